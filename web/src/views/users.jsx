// Admin: users, their limits, model lists and status; their keys in keys.jsx.
import { useMemo, useState } from 'preact/hooks';
import { api, enc, request } from '../api.js';
import {
  Alert,
  Empty,
  Section,
  SecretOnce,
  fmt,
  limit,
  optionalCount,
  useAction,
  useLoad,
} from '../ui.jsx';
import { ModelPicker } from './fields.jsx';
import { Keys } from './keys.jsx';

export function Users({ who }) {
  const users = useLoad(() => api('GET', '/admin/users').then((r) => r.data));
  const models = useLoad(() => api('GET', '/admin/models').then((r) => r.data.map((m) => m.model_id)));
  const [open, setOpen] = useState(null); // { userId, panel: 'edit' | 'keys' }
  const toggle = (userId, panel) =>
    setOpen((cur) => (cur?.userId === userId && cur.panel === panel ? null : { userId, panel }));

  return (
    <>
      <h1>Users</h1>
      <CreateUser models={models.data ?? []} onCreated={users.reload} />
      <Section title="All users" testId="users-table">
        <Alert error={users.error} />
        {users.data?.length === 0 && <Empty>No users yet.</Empty>}
        {users.data && users.data.length > 0 && (
          <table class="table">
            <thead>
              <tr>
                <th>User</th>
                <th>Status</th>
                <th>RPM</th>
                <th>Tokens used / quota</th>
                <th>Models</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {users.data.map((user) => (
                <UserRow
                  key={user.user_id}
                  user={user}
                  models={models.data ?? []}
                  self={user.user_id === who.userId}
                  open={open?.userId === user.user_id ? open.panel : null}
                  onToggle={(panel) => toggle(user.user_id, panel)}
                  onChanged={users.reload}
                />
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function CreateUser({ models, onCreated }) {
  const [choice, setChoice] = useState(null);
  const [created, setCreated] = useState(null);
  const [info, setInfo] = useState(null);
  const action = useAction();

  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const data = new FormData(form);
      const userId = data.get('user_id').trim();
      const body = {
        user_id: userId,
        name: data.get('name').trim() || undefined,
        rpm_limit: optionalCount(data.get('rpm_limit'), 'RPM limit'),
        token_quota: optionalCount(data.get('token_quota'), 'Token quota'),
        models: choice,
      };
      setInfo(null);
      setCreated(null);
      const response = await request('POST', '/admin/users/quota', body);
      const answer = await response.json();
      if (response.status === 201) {
        setCreated({ userId, key: answer.api_key });
        form.reset();
        setChoice(null);
      } else {
        setInfo(`User ${userId} already existed: its limits were updated.`);
      }
      onCreated();
    });

  return (
    <Section title="Create a user" testId="create-user">
      {created && (
        <SecretOnce title={`API key of ${created.userId}`} secret={created.key} onDone={() => setCreated(null)} />
      )}
      <Alert error={info} kind="info" />
      <Alert error={action.error} />
      <form class="form-grid" onSubmit={submit}>
        <label>
          User id
          <input name="user_id" required maxLength={128} pattern="[A-Za-z0-9][A-Za-z0-9._:@\-]*" placeholder="alice" data-testid="user-id" />
        </label>
        <label>
          Name
          <input name="name" maxLength={256} placeholder="Alice Example" data-testid="user-name" />
        </label>
        <label>
          RPM limit
          <input name="rpm_limit" inputMode="numeric" placeholder="unlimited" data-testid="user-rpm" />
        </label>
        <label>
          Token quota
          <input name="token_quota" inputMode="numeric" placeholder="unlimited" data-testid="user-quota" />
        </label>
        <ModelPicker options={models} value={choice} onChange={setChoice} />
        <div class="form-actions">
          <button type="submit" class="primary" disabled={action.busy} data-testid="create-user-submit">
            Create user
          </button>
        </div>
      </form>
    </Section>
  );
}

function UserRow({ user, models, self, open, onToggle, onChanged }) {
  const action = useAction();
  const setStatus = (status) =>
    action.run(async () => {
      await api('PATCH', `/admin/users/${enc(user.user_id)}`, { status });
      onChanged();
    });
  const active = user.status === 'active';
  return (
    <>
      <tr data-testid={`user-row-${user.user_id}`} class={active ? '' : 'muted'}>
        <td data-label="User">
          <span class="mono">{user.user_id}</span>
          {user.is_admin && <span class="badge badge-admin">admin</span>}
          {user.name && <div class="hint">{user.name}</div>}
        </td>
        <td data-label="Status">
          <span class={`badge status-${user.status}`}>{user.status}</span>
        </td>
        <td data-label="RPM">{limit(user.rpm_limit)}</td>
        <td data-label="Tokens">
          {fmt(user.token_used)} / {limit(user.token_quota)}
          {user.token_quota !== null && (
            <meter min={0} max={user.token_quota || 1} value={user.token_used} high={(user.token_quota || 1) * 0.8} />
          )}
        </td>
        <td data-label="Models">{user.models === null ? 'all' : user.models.join(', ') || 'none'}</td>
        <td class="actions">
          <button type="button" onClick={() => onToggle('edit')} aria-expanded={open === 'edit'} data-testid="user-edit">
            Limits
          </button>
          <button type="button" onClick={() => onToggle('keys')} aria-expanded={open === 'keys'} data-testid="user-keys">
            Keys
          </button>
          {self ? null : active ? (
            <button type="button" class="danger-outline" disabled={action.busy} onClick={() => setStatus('disabled')} data-testid="user-disable">
              Disable
            </button>
          ) : (
            <button type="button" disabled={action.busy} onClick={() => setStatus('active')} data-testid="user-enable">
              Enable
            </button>
          )}
          <Alert error={action.error} />
        </td>
      </tr>
      {open && (
        <tr class="panel-row">
          <td colSpan={6}>
            {open === 'edit' && <EditUser user={user} models={models} onSaved={onChanged} />}
            {open === 'keys' && <Keys userId={user.user_id} />}
          </td>
        </tr>
      )}
    </>
  );
}

function EditUser({ user, models, onSaved }) {
  const [choice, setChoice] = useState(user.models);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const data = new FormData(event.currentTarget);
      const body = {
        name: data.get('name').trim() || null,
        rpm_limit: optionalCount(data.get('rpm_limit'), 'RPM limit'),
        token_quota: optionalCount(data.get('token_quota'), 'Token quota'),
        models: choice,
      };
      if (data.get('reset')) body.token_used = 0;
      setSaved(false);
      await api('PATCH', `/admin/users/${enc(user.user_id)}`, body);
      setSaved(true);
      onSaved();
    });
  const known = useMemo(() => [...new Set([...models, ...(user.models ?? [])])], [models, user.models]);
  return (
    <form class="form-grid panel" onSubmit={submit} data-testid="edit-user">
      <h3>Limits of {user.user_id}</h3>
      <Alert error={action.error} />
      {saved && <Alert error="Saved." kind="info" />}
      <label>
        Name
        <input name="name" defaultValue={user.name ?? ''} maxLength={256} />
      </label>
      <label>
        RPM limit
        <input name="rpm_limit" inputMode="numeric" defaultValue={user.rpm_limit ?? ''} placeholder="unlimited" />
      </label>
      <label>
        Token quota
        <input name="token_quota" inputMode="numeric" defaultValue={user.token_quota ?? ''} placeholder="unlimited" />
      </label>
      <label class="check">
        <input type="checkbox" name="reset" value="1" /> Reset tokens used to 0
      </label>
      <ModelPicker options={known} value={choice} onChange={setChoice} />
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy}>
          Save limits
        </button>
      </div>
    </form>
  );
}
