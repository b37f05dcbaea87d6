// The signed-in user's quota, budgets and usage, as a chart that follows new requests.
import { useMemo } from 'preact/hooks';
import { api } from '../api.js';
import { BarChart, tokenSeries } from '../chart.jsx';
import { micros, percent } from '../money.js';
import { Alert, Section, fmt, limit, useInterval, useLoad, when } from '../ui.jsx';
import { Stat } from './admin-usage.jsx';

export function MyUsage() {
  const usage = useLoad(() => api('GET', '/v1/usage'));
  useInterval(usage.reload, 2000);
  const data = usage.data;
  const series = useMemo(() => tokenSeries(data?.models ?? [], 'model'), [data]);
  const total = (data?.models ?? []).reduce((sum, row) => sum + row.total_tokens, 0);
  const requests = (data?.models ?? []).reduce((sum, row) => sum + row.requests, 0);
  return (
    <>
      <h1>My usage</h1>
      <Alert error={usage.error} />
      {data && (
        <div class="stats">
          <Stat label="Tokens used" value={data.token_used} testId="stat-used" />
          <div class="stat">
            <span class="stat-label">Quota</span>
            <span class="stat-value">{limit(data.token_quota)}</span>
            {data.token_quota !== null && (
              <>
                <meter min={0} max={data.token_quota || 1} value={data.token_used} high={(data.token_quota || 1) * 0.8} optimum={0} />
                <span class="hint">{fmt(data.token_remaining)} left</span>
              </>
            )}
          </div>
          <div class="stat">
            <span class="stat-label">Requests per minute</span>
            <span class="stat-value">{limit(data.rpm_limit)}</span>
          </div>
          <Stat label="Requests" value={requests} />
          <div class="stat" data-testid="stat-cost">
            <span class="stat-label">Spent</span>
            <span class="stat-value">{data.cost}</span>
            <span class="hint">{data.currency}, all time</span>
          </div>
        </div>
      )}
      {data && data.budgets.length > 0 && <Budgets budgets={data.budgets} currency={data.currency} />}
      <BarChart title="Tokens per model" {...series} total={total} horizontal testId="chart-my-usage" />
    </>
  );
}

const SCOPES = {
  user: () => 'My budget',
  key: () => "This key's budget",
  team: (id) => `Team ${id}`,
  'tokens-user': () => 'My token quota',
  'tokens-team': (id) => `Team ${id}: tokens`,
};

/** Each budget that applies to this key, in its current period (docs/api.md, "Budgets"). */
function Budgets({ budgets, currency }) {
  return (
    <Section title="Budgets" testId="my-budgets">
      <div class="stats">
        {budgets.map((b) => (
          <BudgetStat key={`${b.scope}:${b.id}`} budget={b} currency={currency} />
        ))}
      </div>
    </Section>
  );
}

function BudgetStat({ budget: b, currency }) {
  // A token quota is reported like a budget, its token counts written as amounts.
  const tokens = b.scope.startsWith('tokens-');
  const show = (text) => (tokens ? `${fmt(micros(text))} tokens` : `${text} ${currency}`);
  const share = percent(micros(b.spent), micros(b.budget));
  return (
    <div class="stat" data-testid="my-budget" data-scope={b.scope} data-id={b.id}>
      <span class="stat-label">{(SCOPES[b.scope] ?? (() => b.scope))(b.id)}</span>
      <span class="stat-value" data-testid="my-budget-spent" data-spent={b.spent}>
        {show(b.spent)}
      </span>
      <meter min={0} max={100} value={Math.min(share, 100)} high={80} optimum={0} />
      <span class="hint" data-testid="my-budget-of" data-budget={b.budget} data-remaining={b.remaining}>
        {share} % of {show(b.budget)} per {b.budget_period} ({b.period}); {show(b.remaining)} left
      </span>
      <span class="hint">{b.resets_at ? `Resets ${when(b.resets_at)}` : 'Never resets'}</span>
    </div>
  );
}
