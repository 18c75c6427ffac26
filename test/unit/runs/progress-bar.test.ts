import { describe, expect, it } from 'vitest';
import { createProgressDrawer, renderProgressBar } from '../../../src/cli/tenants-up.js';

const progress = { total: 200, pending: 78, running: 2, succeeded: 118, failed: 2, skipped: 0, cancelled: 0 };

describe('renderProgressBar', () => {
  it('shows ended targets of all with successes and failures', () => {
    expect(renderProgressBar(progress, 10)).toBe('[######....] 120/200 ok 118 failed 2');
  });
});

describe('createProgressDrawer', () => {
  it('redraws in place on a terminal', () => {
    const written: string[] = [];
    const drawer = createProgressDrawer({ write: (t) => written.push(t), isTTY: true });
    drawer.draw(progress);
    drawer.draw(progress);
    drawer.end({ ...progress, pending: 0, running: 0, succeeded: 198 });
    expect(written).toHaveLength(2);
    expect(written[0]!.startsWith('\r')).toBe(true);
    expect(written[1]!.endsWith('\n')).toBe(true);
  });

  it('writes plain lines at most every two seconds otherwise', () => {
    const written: string[] = [];
    let now = 10_000;
    const drawer = createProgressDrawer({ write: (t) => written.push(t), isTTY: false }, () => now);
    drawer.draw(progress);
    drawer.draw({ ...progress, succeeded: 119 });
    now += 2000;
    drawer.draw({ ...progress, succeeded: 120 });
    expect(written).toHaveLength(2);
    expect(written.every((line) => line.endsWith('\n') && !line.includes('\r'))).toBe(true);
  });
});
