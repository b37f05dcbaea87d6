// Admin: one user's keys. A new key is shown once; a revoked key stops working at once.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, ConfirmButton, Empty, SecretOnce, useAction, useLoad, when } from '../ui.jsx';

export function Keys({ userId }) {
  const keys = useLoad(() => api('GET', `/admin/users/${enc(userId)}/keys`).then((r) => r.data), [userId]);
  const [created, setCreated] = useState(null);
  const action = useAction();

  const create = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const name = new FormData(form).get('name').trim();
      const answer = await api('POST', `/admin/users/${enc(userId)}/keys`, name ? { name } : {});
      setCreated(answer.key);
      form.reset();
      keys.reload();
    });
  const revoke = (id) =>
    action.run(async () => {
      await api('DELETE', `/admin/keys/${enc(id)}`);
      keys.reload();
    });

  return (
    <div class="panel" data-testid="keys-panel">
      <h3>Keys of {userId}</h3>
      {created && <SecretOnce title={`New key for ${userId}`} secret={created} onDone={() => setCreated(null)} />}
      <Alert error={keys.error ?? action.error} />
      <form class="inline-form" onSubmit={create}>
        <label>
          Key name
          <input name="name" maxLength={256} placeholder="laptop" />
        </label>
        <button type="submit" class="primary" disabled={action.busy} data-testid="key-create">
          Create key
        </button>
      </form>
      {keys.data?.length === 0 && <Empty>No keys.</Empty>}
      {keys.data && keys.data.length > 0 && (
        <table class="table compact">
          <thead>
            <tr>
              <th>Prefix</th>
              <th>Name</th>
              <th>Created</th>
              <th>Last used</th>
              <th>State</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {keys.data.map((key) => (
              <tr key={key.id} data-testid={`key-row-${key.prefix}`}>
                <td data-label="Prefix" class="mono">{key.prefix}…</td>
                <td data-label="Name">{key.name ?? '—'}</td>
                <td data-label="Created">{when(key.created_at)}</td>
                <td data-label="Last used">{when(key.last_used_at)}</td>
                <td data-label="State">
                  {key.revoked_at ? <span class="badge status-disabled">revoked</span> : <span class="badge status-active">live</span>}
                </td>
                <td class="actions">
                  {!key.revoked_at && (
                    <ConfirmButton label="Revoke" onConfirm={() => revoke(key.id)} disabled={action.busy} testId="key-revoke" />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
