import { h } from './dom.js';

/**
 * Opens a modal `<dialog>` (focus kept inside, Escape closes it) built by `build(close)`;
 * resolves with what `close(value)` was given, or null when dismissed.
 */
export function openDialog(title, build) {
  return new Promise((resolve) => {
    const heading = h('h2', { id: 'dialog-title' }, title);
    const dialog = h('dialog', { 'aria-labelledby': 'dialog-title' });
    let result = null;
    const close = (value) => {
      result = value;
      dialog.close();
    };
    dialog.append(heading, build(close));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/**
 * Asks the operator to type `name` (a tenant's name or a run's id) before a destructive action;
 * `fields` adds inputs whose values come back with the confirmation. Resolves null when dismissed.
 */
export function confirmByName({ title, description, name, actionLabel, fields = [] }) {
  return openDialog(title, (close) => {
    const input = h('input', {
      id: 'confirm-name',
      type: 'text',
      autocomplete: 'off',
      spellcheck: 'false',
      required: true,
    });
    const confirm = h(
      'button',
      { type: 'submit', class: 'danger', testid: 'confirm', disabled: true },
      actionLabel,
    );
    input.addEventListener('input', () => {
      confirm.disabled = input.value !== name;
    });
    const form = h(
      'form',
      { method: 'dialog' },
      h('p', null, description),
      fields.map((field) => field.element),
      h('label', { for: 'confirm-name' }, 'Type ', h('code', null, name), ' to confirm'),
      input,
      h(
        'div',
        { class: 'dialog-actions' },
        h('button', { type: 'button', onclick: () => close(null) }, 'Cancel'),
        confirm,
      ),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (input.value !== name) return;
      close(Object.fromEntries(fields.map((field) => [field.key, field.value()])));
    });
    return form;
  });
}
