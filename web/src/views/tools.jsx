// Admin: MCP servers and their tools (secrets write-only), and tool policies.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, ConfirmButton, Empty, Section, pretty, useAction, useLoad } from '../ui.jsx';
import { lines, parsePairs } from './fields.jsx';

export function Tools() {
  const servers = useLoad(() => api('GET', '/admin/mcp/servers').then((r) => r.data));
  const policies = useLoad(() => api('GET', '/admin/tools/policies').then((r) => r.data));
  return (
    <>
      <h1>Tools</h1>
      <Section title="MCP servers" testId="mcp-servers">
        <Alert error={servers.error} />
        {servers.data?.length === 0 && <Empty>No MCP servers yet.</Empty>}
        {servers.data?.map((server) => (
          <Server key={server.name} server={server} onChanged={servers.reload} />
        ))}
      </Section>
      <Section title="Register an MCP server" testId="register-server">
        <ServerForm onSaved={servers.reload} />
      </Section>
      <Section title="Tool policies" testId="policies">
        <p class="hint">
          With no matching row a call needs its owner's confirmation. The most specific row wins: user and
          server, then user, then server, then global.
        </p>
        <Alert error={policies.error} />
        <Policies rows={policies.data ?? []} onChanged={policies.reload} />
      </Section>
    </>
  );
}

function Server({ server, onChanged }) {
  const [open, setOpen] = useState(false);
  const tools = useLoad(
    () => (open ? api('GET', `/admin/mcp/servers/${enc(server.name)}/tools`).then((r) => r.tools) : null),
    [open, server.name],
  );
  const action = useAction();
  const remove = () =>
    action.run(async () => {
      await api('DELETE', `/admin/mcp/servers/${enc(server.name)}`);
      onChanged();
    });
  const target = server.transport === 'stdio' ? [server.command, ...server.args].join(' ') : server.url;
  return (
    <article class="server" data-testid={`server-${server.name}`}>
      <header class="server-head">
        <div>
          <strong class="mono">{server.name}</strong>{' '}
          <span class={`badge status-${server.status === 'running' ? 'active' : 'disabled'}`} data-testid="server-status">
            {server.status}
          </span>{' '}
          <span class="hint">{server.transport}</span>
          <div class="hint mono breakable">{target}</div>
          <div class="hint">
            {server.transport === 'stdio' ? 'env' : 'headers'}:{' '}
            {(server.env_set || server.headers_set) ? 'set (write-only)' : 'none'}
          </div>
        </div>
        <div class="actions">
          <button type="button" onClick={() => setOpen(!open)} aria-expanded={open} data-testid="server-tools">
            {open ? 'Hide tools' : 'Show tools'}
          </button>
          <ConfirmButton label="Remove" onConfirm={remove} disabled={action.busy} />
        </div>
      </header>
      <Alert error={action.error ?? tools.error} />
      {open && tools.data && (
        <ul class="tools-list" data-testid="tools-list">
          {tools.data.length === 0 && <li class="empty">This server offers no tools.</li>}
          {tools.data.map((tool) => (
            <li key={tool.name}>
              <details>
                <summary>
                  <span class="mono">{tool.name}</span>
                  {tool.description && <span class="hint"> — {tool.description}</span>}
                </summary>
                <pre class="json">{pretty(tool.input_schema)}</pre>
              </details>
            </li>
          ))}
        </ul>
      )}
    </article>
  );
}

function ServerForm({ onSaved }) {
  const [transport, setTransport] = useState('stdio');
  const [done, setDone] = useState(null);
  const action = useAction();
  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const data = new FormData(form);
      const name = data.get('name').trim();
      const body = { name, transport };
      if (transport === 'stdio') {
        body.command = data.get('command').trim();
        body.args = lines(data.get('args'));
        const env = parsePairs(data.get('env'), '=');
        if (Object.keys(env).length) body.env = env;
      } else {
        body.url = data.get('url').trim();
        const headers = parsePairs(data.get('headers'), ':');
        if (Object.keys(headers).length) body.headers = headers;
      }
      setDone(null);
      const server = await api('POST', '/admin/mcp/servers', body);
      setDone(`Server ${server.name} registered: ${server.status}.`);
      form.reset();
      onSaved();
    });
  return (
    <form class="form-grid" onSubmit={submit} data-testid="server-form">
      <Alert error={action.error} />
      <Alert error={done} kind="info" />
      <label>
        Name
        <input name="name" required maxLength={64} pattern="[A-Za-z0-9][A-Za-z0-9_\-]*" placeholder="weather" data-testid="server-name" />
      </label>
      <label>
        Transport
        <select value={transport} onChange={(e) => setTransport(e.currentTarget.value)} data-testid="server-transport">
          <option value="stdio">stdio (a command the gateway starts)</option>
          <option value="http">http (a streamable HTTP URL)</option>
        </select>
      </label>
      {transport === 'stdio' ? (
        <>
          <label class="wide">
            Command
            <input name="command" required class="mono" placeholder="/usr/bin/python3" data-testid="server-command" />
          </label>
          <label>
            Arguments, one per line
            <textarea name="args" rows={3} class="mono" spellcheck={false} data-testid="server-args" />
          </label>
          <label>
            Environment, NAME=value per line (write-only)
            <textarea name="env" rows={3} class="mono" spellcheck={false} autoComplete="off" />
          </label>
        </>
      ) : (
        <>
          <label class="wide">
            URL
            <input name="url" type="url" required class="mono" placeholder="http://127.0.0.1:9000/mcp" />
          </label>
          <label class="wide">
            Headers, Name: value per line (write-only)
            <textarea name="headers" rows={3} class="mono" spellcheck={false} autoComplete="off" />
          </label>
        </>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy} data-testid="server-submit">
          {action.busy ? 'Starting…' : 'Register server'}
        </button>
      </div>
    </form>
  );
}

function Policies({ rows, onChanged }) {
  const action = useAction();
  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const data = new FormData(form);
      const body = { tool_name: data.get('tool_name').trim(), policy: data.get('policy') };
      const server = data.get('server').trim();
      const userId = data.get('user_id').trim();
      if (server) body.server = server;
      if (userId) body.user_id = userId;
      await api('POST', '/admin/tools/policies', body);
      form.reset();
      onChanged();
    });
  const remove = (row) =>
    action.run(async () => {
      const query = new URLSearchParams({ tool_name: row.tool_name });
      if (row.server) query.set('server', row.server);
      if (row.user_id) query.set('user_id', row.user_id);
      await api('DELETE', `/admin/tools/policies?${query}`);
      onChanged();
    });
  return (
    <>
      <Alert error={action.error} />
      {rows.length === 0 && <Empty>No policy rows: every call needs confirmation.</Empty>}
      {rows.length > 0 && (
        <table class="table compact">
          <thead>
            <tr>
              <th>Tool</th>
              <th>Server</th>
              <th>User</th>
              <th>Policy</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id}>
                <td data-label="Tool" class="mono">{row.tool_name}</td>
                <td data-label="Server">{row.server ?? 'any'}</td>
                <td data-label="User">{row.user_id ?? 'everyone'}</td>
                <td data-label="Policy">
                  <span class={`badge policy-${row.policy}`}>{row.policy}</span>
                </td>
                <td class="actions">
                  <ConfirmButton label="Remove" onConfirm={() => remove(row)} disabled={action.busy} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="inline-form" onSubmit={submit} data-testid="policy-form">
        <label>
          Tool
          <input name="tool_name" required placeholder="get_weather" />
        </label>
        <label>
          Policy
          <select name="policy">
            <option value="confirm">confirm</option>
            <option value="auto">auto</option>
            <option value="block">block</option>
          </select>
        </label>
        <label>
          Server
          <input name="server" placeholder="any" />
        </label>
        <label>
          User
          <input name="user_id" placeholder="everyone" />
        </label>
        <button type="submit" class="primary" disabled={action.busy}>
          Set policy
        </button>
      </form>
    </>
  );
}
