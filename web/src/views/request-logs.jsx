// Admin: the request logs (docs/api.md, "Admin: request logs"): find a request by id, user,
// model and time, and read its redacted bodies.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, Empty, Section, fmt, pretty, useAction, useLoad, when } from '../ui.jsx';

const PAGE = 50;

function query(filters, after) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (filters.requestId.trim()) params.set('request_id', filters.requestId.trim());
  if (filters.user) params.set('user_id', filters.user);
  if (filters.model) params.set('model', filters.model);
  if (filters.since) params.set('since', filters.since);
  if (filters.until) {
    const end = new Date(`${filters.until}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // the chosen day is included
    params.set('until', end.toISOString());
  }
  if (after) params.set('after', String(after));
  return `/admin/request-logs?${params}`;
}

export function RequestLogs() {
  const [filters, setFilters] = useState({ requestId: '', user: '', model: '', since: '', until: '' });
  const [open, setOpen] = useState(null);
  const [more, setMore] = useState([]);
  const users = useLoad(() => api('GET', '/admin/users').then((r) => r.data.map((u) => u.user_id)));
  const models = useLoad(() => api('GET', '/admin/models').then((r) => r.data.map((m) => m.model_id)));
  const page = useLoad(() => {
    setMore([]);
    return api('GET', query(filters));
  }, [filters]);
  const loader = useAction();
  const rows = [...(page.data?.data ?? []), ...more.flatMap((p) => p.data)];
  const last = more.length ? more[more.length - 1] : page.data;
  const loadMore = () =>
    loader.run(async () => {
      const next = await api('GET', query(filters, last.last_id));
      setMore([...more, next]);
    });
  const set = (name) => (event) => setFilters({ ...filters, [name]: event.currentTarget.value });

  return (
    <>
      <h1>Request logs</h1>
      <p class="hint">
        Bodies of the requests of models with <code>params.request_log</code> (or all, with{' '}
        <code>REQUEST_LOG</code>), redacted and capped before they were written.
      </p>
      <Section title="Find" testId="request-log-filters">
        <form class="inline-form" onSubmit={(e) => e.preventDefault()}>
          <label>
            Request id
            <input value={filters.requestId} onChange={set('requestId')} placeholder="x-request-id" data-testid="filter-request-id" />
          </label>
          <Choice label="User" all="All users" value={filters.user} options={users.data} onChange={set('user')} testId="filter-log-user" />
          <Choice label="Model" all="All models" value={filters.model} options={models.data} onChange={set('model')} testId="filter-log-model" />
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
      <Section title="Requests, newest first" testId="request-logs-table">
        <Alert error={page.error || loader.error} />
        {rows.length === 0 && page.data && <Empty>No logged request matches.</Empty>}
        {rows.length > 0 && (
          <table class="table">
            <thead>
              <tr>
                <th>Time</th>
                <th>Request</th>
                <th>User</th>
                <th>Model</th>
                <th>Status</th>
                <th>Bytes in / out</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <LogRow key={row.id} row={row} open={open === row.request_id} onToggle={() => setOpen(open === row.request_id ? null : row.request_id)} />
              ))}
            </tbody>
          </table>
        )}
        {last?.has_more && (
          <button type="button" class="ghost" onClick={loadMore} disabled={loader.busy} data-testid="request-logs-more">
            More
          </button>
        )}
      </Section>
    </>
  );
}

function Choice({ label, all, value, options, onChange, testId }) {
  return (
    <label>
      {label}
      <select value={value} onChange={onChange} data-testid={testId}>
        <option value="">{all}</option>
        {(options ?? []).map((id) => (
          <option key={id} value={id}>
            {id}
          </option>
        ))}
      </select>
    </label>
  );
}

function LogRow({ row, open, onToggle }) {
  return (
    <>
      <tr>
        <td>{when(row.created_at)}</td>
        <td>
          <button type="button" class="link mono" onClick={onToggle} aria-expanded={open} data-testid="request-log-open">
            {row.request_id}
          </button>
        </td>
        <td class="mono">{row.user_id}</td>
        <td class="mono">{row.model}</td>
        <td>
          <span class={`badge job-${row.status === 'ok' ? 'completed' : 'failed'}`}>{row.status}</span> {row.http_status}
          {row.stream && <span class="badge">stream</span>}
          {row.truncated && <span class="badge">cut</span>}
        </td>
        <td>
          {fmt(row.request_bytes)} / {fmt(row.response_bytes)}
        </td>
      </tr>
      {open && (
        <tr class="panel-row">
          <td colSpan={6}>
            <Bodies requestId={row.request_id} />
          </td>
        </tr>
      )}
    </>
  );
}

function Bodies({ requestId }) {
  const log = useLoad(() => api('GET', `/admin/request-logs/${enc(requestId)}`), [requestId]);
  if (log.error) return <Alert error={log.error} />;
  if (!log.data) return <p class="hint">Loading…</p>;
  return (
    <div data-testid="request-log-bodies">
      <h3>Request</h3>
      <pre class="json">{pretty(log.data.request_body)}</pre>
      <h3>Answer{log.data.stream ? ' (the events sent)' : ''}</h3>
      <pre class="json">{pretty(log.data.response_body)}</pre>
    </div>
  );
}
