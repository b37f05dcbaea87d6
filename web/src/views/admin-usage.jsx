// Admin: usage across users, per day and per model, with filters.
import { useMemo, useState } from 'preact/hooks';
import { api } from '../api.js';
import { BarChart, tokenSeries } from '../chart.jsx';
import { Alert, Section, fmt, useInterval, useLoad } from '../ui.jsx';

function query(filters, groupBy) {
  const params = new URLSearchParams();
  if (filters.user) params.set('user_id', filters.user);
  if (filters.model) params.set('model', filters.model);
  if (filters.since) params.set('since', filters.since);
  if (filters.until) {
    const end = new Date(`${filters.until}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // the chosen day is included
    params.set('until', end.toISOString());
  }
  if (groupBy) params.set('group_by', groupBy);
  return `/admin/usage?${params}`;
}

export function AdminUsage() {
  const [filters, setFilters] = useState({ user: '', model: '', since: '', until: '' });
  const users = useLoad(() => api('GET', '/admin/users').then((r) => r.data.map((u) => u.user_id)));
  const models = useLoad(() => api('GET', '/admin/models').then((r) => r.data.map((m) => m.model_id)));
  const usage = useLoad(async () => {
    const [days, perModel, totals] = await Promise.all(
      ['day', 'model', null].map((g) => api('GET', query(filters, g)).then((r) => r.data)),
    );
    return { days, perModel, total: totals[0] };
  }, [filters]);
  useInterval(usage.reload, 5000);

  const set = (name) => (event) => setFilters({ ...filters, [name]: event.currentTarget.value });
  const days = useMemo(() => tokenSeries(usage.data?.days ?? [], 'day'), [usage.data]);
  const perModel = useMemo(() => tokenSeries(usage.data?.perModel ?? [], 'model'), [usage.data]);
  const total = usage.data?.total;

  return (
    <>
      <h1>Usage across users</h1>
      <Section title="Filters" testId="usage-filters">
        <form class="inline-form" onSubmit={(e) => e.preventDefault()}>
          <label>
            User
            <select value={filters.user} onChange={set('user')} data-testid="filter-user">
              <option value="">All users</option>
              {(users.data ?? []).map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </label>
          <label>
            Model
            <select value={filters.model} onChange={set('model')} data-testid="filter-model">
              <option value="">All models</option>
              {(models.data ?? []).map((id) => (
                <option key={id} value={id}>
                  {id}
                </option>
              ))}
            </select>
          </label>
          <label>
            From (UTC)
            <input type="date" value={filters.since} onChange={set('since')} />
          </label>
          <label>
            To (UTC)
            <input type="date" value={filters.until} onChange={set('until')} />
          </label>
        </form>
      </Section>
      <Alert error={usage.error} />
      <div class="stats">
        <Stat label="Tokens" value={total?.total_tokens} testId="stat-tokens" />
        <Stat label="Prompt" value={total?.prompt_tokens} />
        <Stat label="Completion" value={total?.completion_tokens} />
        <Stat label="Requests" value={total?.requests} />
        <Stat label="Errors" value={total?.errors} />
      </div>
      <div class="charts">
        <BarChart title="Tokens per day" {...days} total={total?.total_tokens ?? 0} testId="chart-days" />
        <BarChart title="Tokens per model" {...perModel} total={total?.total_tokens ?? 0} horizontal testId="chart-models" />
      </div>
    </>
  );
}

export function Stat({ label, value, testId, children }) {
  return (
    <div class="stat" data-testid={testId}>
      <span class="stat-label">{label}</span>
      <span class="stat-value">{fmt(value)}</span>
      {children}
    </div>
  );
}
