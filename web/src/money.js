// Amounts as the gateway writes them (decimal strings with six places, docs/api.md "Prices and
// cost"), added up exactly in integer micro-units, never as floats.

const MICRO = 1_000_000;

/** "0.012345" → 12345 (micro-units); null and undefined stay null. */
export function micros(text) {
  if (text === null || text === undefined) return null;
  const [whole, frac = ''] = String(text).split('.');
  return Number(whole) * MICRO + Number(frac.padEnd(6, '0').slice(0, 6));
}

/** 12345 → "0.012345": the gateway's own notation, so figures compare as text. */
export function decimal(micro) {
  const whole = Math.floor(micro / MICRO);
  return `${whole}.${String(micro % MICRO).padStart(6, '0')}`;
}

/** An amount for a chart's axis, in units of the currency. */
export const units = (micro) => micro / MICRO;

/** Spent as a share of a budget, in whole per cent (rounded down), or null without a budget. */
export function percent(spent, budget) {
  if (budget === null || budget === undefined) return null;
  if (budget === 0) return spent > 0 ? 100 : 0;
  return Math.floor((spent * 100) / budget);
}

export const PERIODS = [
  { value: 'month', label: 'This month' },
  { value: 'week', label: 'This week' },
  { value: 'day', label: 'Today' },
  { value: 'total', label: 'All time' },
];

const DAY_MS = 86_400_000;

/** The UTC period of kind `kind` holding `now` (a Date): ISO weeks from Monday, months from the
 * 1st; `total` has no bounds. Dates as ISO 8601, for `since` and `until`. */
export function periodRange(kind, now = new Date()) {
  if (kind === 'total') return { since: null, until: null };
  const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  let start = day;
  let end = day + DAY_MS;
  if (kind === 'week') {
    start = day - ((now.getUTCDay() + 6) % 7) * DAY_MS;
    end = start + 7 * DAY_MS;
  } else if (kind === 'month') {
    start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    end = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  }
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  return { since: iso(start), until: iso(end) };
}
