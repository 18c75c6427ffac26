// Builds DOM with createElement and text nodes only: no HTML strings anywhere (the CSP enforces
// Trusted Types with no policy, so an innerHTML assignment would throw).

/** Creates `<tag>` with attributes, `on…` listeners and children (strings, nodes, arrays; null skipped). */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') element.addEventListener(key.slice(2), value);
    else if (key === 'class') element.className = value;
    else if (key === 'testid') element.dataset.testid = value;
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

/** Appends children (flattened; null, undefined and false skipped). */
export function append(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces every child of `element`. */
export function replace(element, ...children) {
  element.replaceChildren();
  return append(element, children);
}

/** A date and time in the reader's locale; '—' when absent. */
export function formatTime(value) {
  if (!value) return '—';
  return new Date(value).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

/** A count with the reader's digit grouping. */
export function formatCount(value) {
  return new Intl.NumberFormat().format(value);
}

/** A status as a small badge; the colour comes from the class, the meaning from the text. */
export function badge(status) {
  return h('span', { class: `badge badge-${String(status).toLowerCase()}` }, status);
}

/** A horizontal bar chart as a table: label, bar (decoration), count. */
export function barChart(caption, rows) {
  const max = Math.max(1, ...rows.map((row) => row.count));
  return h(
    'table',
    { class: 'bars' },
    h('caption', null, caption),
    h(
      'thead',
      { class: 'visually-hidden' },
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Value'),
        h('th', { scope: 'col' }, 'Share'),
        h('th', { scope: 'col' }, 'Tenants'),
      ),
    ),
    h(
      'tbody',
      null,
      rows.map((row) => {
        const fill = h('span', { class: 'bar-fill' });
        // CSSOM, not a style attribute: allowed under style-src 'self'.
        fill.style.width = `${(row.count / max) * 100}%`;
        return h(
          'tr',
          null,
          h('th', { scope: 'row' }, row.label),
          h('td', { class: 'bar-cell', 'aria-hidden': 'true' }, h('span', { class: 'bar-track' }, fill)),
          h('td', { class: 'num' }, formatCount(row.count)),
        );
      }),
    ),
  );
}

/** A table that scrolls sideways on a narrow window instead of squeezing its columns. */
export function scrollTable(caption, headings, rows, props = {}) {
  return h(
    'div',
    { class: 'table-scroll', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      props,
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          headings.map((heading) => h('th', { scope: 'col' }, heading)),
        ),
      ),
      h('tbody', null, rows),
    ),
  );
}

/** A message for errors the reader should see, announced by screen readers. */
export function alertBox(message) {
  return h('p', { class: 'alert', role: 'alert' }, message);
}
