// Admin: the audit log of admin writes (docs/api.md, "Admin audit log"), newest first, filtered,
// with older pages on demand. Secrets arrive as *** and are shown as they arrive.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Alert, Empty, Section, useAction, useLoad, when } from '../ui.jsx';

const PAGE = 50;

function query(filters, cursor) {
  const params = new URLSearchParams({ limit: String(PAGE) });
  for (const name of ['actor', 'action', 'target']) {
    if (filters[name].trim()) params.set(name, filters[name].trim());
  }
  if (filters.since) params.set('since', filters.since);
  if (filters.until) {
    const end = new Date(`${filters.until}T00:00:00Z`);
    end.setUTCDate(end.getUTCDate() + 1); // the chosen day is included
    params.set('until', end.toISOString());
  }
  if (cursor) params.set('cursor', cursor);
  return `/admin/audit?${params}`;
}

const shown = (value) => (value === null || value === undefined ? '∅' : JSON.stringify(value));

export function Audit() {
  const [filters, setFilters] = useState({ actor: '', action: '', target: '', since: '', until: '' });
  const [older, setOlder] = useState({ entries: [], cursor: undefined });
  const first = useLoad(async () => {
    const page = await api('GET', query(filters));
    setOlder({ entries: [], cursor: page.next_cursor });
    return page.data;
  }, [filters]);
  const more = useAction();
  const loadMore = () =>
    more.run(async () => {
      const page = await api('GET', query(filters, older.cursor));
      setOlder({ entries: [...older.entries, ...page.data], cursor: page.next_cursor });
    });
  const set = (name) => (event) => setFilters({ ...filters, [name]: event.currentTarget.value });
  const entries = [...(first.data ?? []), ...older.entries];

  return (
    <>
      <h1>Audit log</h1>
      <p class="hint">
        Every change made through the admin API or the <code>lowart</code> command. Edits made directly in the
        database are not recorded.
      </p>
      <Section title="Filters" testId="audit-filters">
        <form class="inline-form" onSubmit={(e) => e.preventDefault()}>
          <label>
            Actor
            <input value={filters.actor} onInput={set('actor')} placeholder="admin, cli…" data-testid="audit-actor" />
          </label>
          <label>
            Action
            <input value={filters.action} onInput={set('action')} placeholder="models.update" data-testid="audit-action" />
          </label>
          <label>
            Target
            <input value={filters.target} onInput={set('target')} placeholder="an id" data-testid="audit-target" />
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
      <Section title="Entries" testId="audit-entries">
        <Alert error={first.error} />
        {first.data && entries.length === 0 && <Empty>No entries match.</Empty>}
        {entries.length > 0 && (
        <div class="table-scroll">
          <table class="table" data-testid="audit-table">
            <thead>
              <tr>
                <th>When</th>
                <th>Actor</th>
                <th>Action</th>
                <th>Target</th>
                <th>Changes</th>
                <th>From</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((entry) => (
                <Entry key={entry.id} entry={entry} />
              ))}
            </tbody>
          </table>
        </div>
        )}
        <Alert error={more.error} />
        {older.cursor && (
          <button type="button" onClick={loadMore} disabled={more.busy} data-testid="audit-more">
            Older entries
          </button>
        )}
      </Section>
    </>
  );
}

function Entry({ entry }) {
  const changes = Object.entries(entry.changes);
  return (
    <tr data-testid="audit-entry">
      <td title={entry.at}>{when(entry.at)}</td>
      <td>
        {entry.actor}
        {entry.actor_key_id && <div class="hint mono">{entry.actor_key_id}</div>}
      </td>
      <td class="mono">{entry.action}</td>
      <td class="mono">{entry.target ?? '—'}</td>
      <td>
        {changes.length === 0 && <span class="hint">no field changed</span>}
        <ul class="changes">
          {changes.map(([field, change]) => (
            <li key={field}>
              <span class="mono">{field}</span>: {shown(change.from)} → {shown(change.to)}
            </li>
          ))}
        </ul>
      </td>
      <td>
        {entry.client_address ?? '—'}
        {entry.request_id && <div class="hint mono">{entry.request_id}</div>}
      </td>
    </tr>
  );
}
