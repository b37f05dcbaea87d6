// Admin: spend per team and per user in a period, each against its budget, with CSV exports.
import { useMemo, useState } from 'preact/hooks';
import { api, request } from '../api.js';
import { BarChart } from '../chart.jsx';
import { PERIODS, decimal, micros, percent, periodRange, units } from '../money.js';
import { Alert, Empty, Section, useAction, useInterval, useLoad } from '../ui.jsx';

const SPEND_COLORS = { spent: '#4c6ef5', over: '#e03131', left: '#dee2e6' };

function usagePath(range, groupBy, format) {
  const params = new URLSearchParams({ group_by: groupBy });
  if (range.since) params.set('since', range.since);
  if (range.until) params.set('until', range.until);
  if (format) params.set('format', format);
  return `/admin/usage?${params}`;
}

/** One row per owner (every team or user, and any found only in the usage), spend first;
 * `kind` is the report's grouping (`team`, `user`), its owners keyed by `team_id`, `user_id`. */
export function spendRows(owners, usage, kind, period) {
  const key = `${kind}_id`;
  const spent = new Map(usage.map((row) => [row[kind], micros(row.cost)]));
  const rows = owners.map((owner) => {
    const budget = micros(owner.budget);
    const comparable = budget !== null && owner.budget_period === period;
    const mine = spent.get(owner[key]) ?? 0;
    spent.delete(owner[key]);
    return { id: owner[key], spent: mine, budget, budgetPeriod: owner.budget_period, comparable };
  });
  for (const [id, mine] of spent) {
    rows.push({ id, spent: mine, budget: null, budgetPeriod: null, comparable: false });
  }
  return rows.sort((a, b) => b.spent - a.spent || String(a.id).localeCompare(String(b.id)));
}

/** Stacked bars: spent within the budget, spent over it, and what is left of it. */
function spendSeries(rows, noneLabel) {
  const within = (r) => (r.comparable ? Math.min(r.spent, r.budget) : r.spent);
  return {
    labels: rows.map((r) => (r.id === null ? noneLabel : String(r.id))),
    datasets: [
      { label: 'Spent', data: rows.map((r) => units(within(r))), color: SPEND_COLORS.spent },
      {
        label: 'Over budget',
        data: rows.map((r) => units(r.comparable ? Math.max(0, r.spent - r.budget) : 0)),
        color: SPEND_COLORS.over,
      },
      {
        label: 'Budget left',
        data: rows.map((r) => units(r.comparable ? Math.max(0, r.budget - r.spent) : 0)),
        color: SPEND_COLORS.left,
      },
    ],
  };
}

export function AdminSpend() {
  const [period, setPeriod] = useState('month');
  const range = useMemo(() => periodRange(period), [period]);
  const spend = useLoad(async () => {
    const [teams, users, byTeam, byUser] = await Promise.all([
      api('GET', '/admin/teams'),
      api('GET', '/admin/users'),
      api('GET', usagePath(range, 'team')),
      api('GET', usagePath(range, 'user')),
    ]);
    return {
      currency: byTeam.currency,
      teams: spendRows(teams.data, byTeam.data, 'team', period),
      users: spendRows(users.data, byUser.data, 'user', period),
    };
  }, [range, period]);
  useInterval(spend.reload, 5000);
  const data = spend.data;

  return (
    <>
      <h1>Spend against budgets</h1>
      <Section title="Period" testId="spend-filters">
        <form class="inline-form" onSubmit={(e) => e.preventDefault()}>
          <label>
            Period (UTC)
            <select value={period} onChange={(e) => setPeriod(e.currentTarget.value)} data-testid="spend-period">
              {PERIODS.map((p) => (
                <option key={p.value} value={p.value}>
                  {p.label}
                </option>
              ))}
            </select>
          </label>
        </form>
        <p class="hint" data-testid="spend-range" data-since={range.since ?? ''} data-until={range.until ?? ''}>
          {range.since ? `From ${range.since} to ${range.until} (UTC).` : 'Everything recorded.'} A budget is
          compared when its period is the one shown; budgets follow BUDGET_TZ.
        </p>
      </Section>
      <Alert error={spend.error} />
      {data && (
        <>
          <SpendSection title="Teams" kind="team" rows={data.teams} currency={data.currency} range={range} noneLabel="no team" />
          <SpendSection title="Users" kind="user" rows={data.users} currency={data.currency} range={range} noneLabel="—" />
        </>
      )}
    </>
  );
}

function SpendSection({ title, kind, rows, currency, range, noneLabel }) {
  const series = useMemo(() => spendSeries(rows, noneLabel), [rows, noneLabel]);
  const total = decimal(rows.reduce((sum, r) => sum + r.spent, 0));
  return (
    <Section title={title} testId={`spend-${kind}s`} actions={<CsvButton kind={kind} range={range} />}>
      <BarChart
        title={`Spend per ${kind}`}
        {...series}
        total={total}
        unit={currency}
        horizontal
        testId={`chart-spend-${kind}s`}
      />
      {rows.length === 0 ? <Empty>No {kind}s yet.</Empty> : <SpendTable kind={kind} rows={rows} currency={currency} noneLabel={noneLabel} />}
    </Section>
  );
}

function SpendTable({ kind, rows, currency, noneLabel }) {
  return (
    <table class="table" data-testid={`spend-${kind}-table`}>
      <thead>
        <tr>
          <th>{kind === 'team' ? 'Team' : 'User'}</th>
          <th>Spent ({currency})</th>
          <th>Budget</th>
          <th>Used</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <SpendRow key={r.id ?? ''} kind={kind} row={r} noneLabel={noneLabel} />
        ))}
      </tbody>
    </table>
  );
}

function SpendRow({ kind, row, noneLabel }) {
  const share = row.comparable ? percent(row.spent, row.budget) : null;
  return (
    <tr data-testid={`spend-${kind}-row`} data-id={row.id ?? ''}>
      <td data-label={kind === 'team' ? 'Team' : 'User'} class="mono">
        {row.id ?? noneLabel}
      </td>
      <td data-label="Spent" data-testid="spend-spent">
        {decimal(row.spent)}
      </td>
      <td data-label="Budget" data-testid="spend-budget" data-period={row.budgetPeriod ?? ''}>
        {row.budget === null ? 'none' : `${decimal(row.budget)} per ${row.budgetPeriod}`}
      </td>
      <td data-label="Used" data-testid="spend-percent">
        {share === null ? (
          <span class="hint">{row.budget === null ? '—' : 'another period'}</span>
        ) : (
          <>
            <span>{share} %</span>
            <meter min={0} max={100} value={Math.min(share, 100)} high={80} optimum={0} />
          </>
        )}
      </td>
    </tr>
  );
}

/** The period's report as CSV (`format=csv`), fetched with the key and saved as a file: a plain
 * link would need the key in its URL. */
function CsvButton({ kind, range }) {
  const action = useAction();
  const save = () =>
    action.run(async () => {
      const response = await request('GET', usagePath(range, kind, 'csv'));
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement('a');
      link.href = url;
      link.download = `spend-per-${kind}.csv`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000); // after the download has begun
    });
  return (
    <span class="actions">
      <button type="button" onClick={save} disabled={action.busy} data-testid={`spend-csv-${kind}`}>
        Export CSV
      </button>
      <Alert error={action.error} />
    </span>
  );
}
