// Admin: a model's deployments (docs/api.md, "Deployments"): weight, enabled, caps, the
// write-only key, and each one's live health on the instance that answered, refreshed every 5 s.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, ConfirmButton, Empty, useAction, useInterval, useLoad } from '../ui.jsx';
import { parseJsonObject } from './fields.jsx';

const VENDORS = ['OpenAI', 'Anthropic', 'ComfyUI', 'Mock'];

function capText(d) {
  const caps = [d.rpm_cap && `${d.rpm_cap} RPM`, d.tpm_cap && `${d.tpm_cap} TPM`].filter(Boolean);
  return caps.length ? caps.join(', ') : '—';
}

function Health({ health }) {
  const state = health.state === 'closed' ? 'status-active' : 'status-disabled';
  return (
    <>
      <span class={`badge ${state}`} data-testid="deployment-state">
        {health.state}
        {health.cooling_s ? ` ${Math.ceil(health.cooling_s)} s` : ''}
      </span>
      <div class="hint">
        {health.in_flight} in flight · {health.latency_ms == null ? 'no recent latency' : `${health.latency_ms} ms to first byte`}
        {' · '}
        {health.errors} errors{health.last_error ? ` (last: ${health.last_error})` : ''}
      </div>
    </>
  );
}

export function Deployments({ model }) {
  const path = `/admin/models/${enc(model.model_id)}/deployments`;
  const list = useLoad(() => api('GET', path), [path]);
  useInterval(list.reload, 5000);
  return (
    <div class="panel" data-testid="deployments-editor">
      <h3>Deployments of {model.model_id}</h3>
      <p class="hint">
        Strategy <span class="mono">{list.data?.strategy ?? '…'}</span>
        {list.data?.sticky ? ', sticky sessions' : ''} (the model's params <span class="mono">strategy</span> and{' '}
        <span class="mono">sticky</span>). The default deployment is the model itself: edit it as the model. In flight,
        latency and errors are this instance's view.
      </p>
      <Alert error={list.error} />
      {list.data && (
        <table class="table">
          <thead>
            <tr>
              <th>Deployment</th>
              <th>Weight</th>
              <th>Caps</th>
              <th>Health</th>
              <th aria-label="Actions" />
            </tr>
          </thead>
          <tbody>
            {list.data.data.map((d) => (
              <DeploymentRow key={d.id} path={path} deployment={d} onChanged={list.reload} />
            ))}
          </tbody>
        </table>
      )}
      {list.data?.data.length === 1 && <Empty>No further deployments: the model has one upstream.</Empty>}
      <DeploymentForm path={path} onSaved={list.reload} />
    </div>
  );
}

function DeploymentRow({ path, deployment: d, onChanged }) {
  const action = useAction();
  const own = d.id === 'default';
  const patch = (fields) =>
    action.run(async () => {
      await api('PATCH', `${path}/${enc(d.id)}`, fields);
      onChanged();
    });
  const weigh = () => {
    const value = window.prompt(`Weight of ${d.id}`, String(d.weight));
    if (value !== null && value.trim() !== '') patch({ weight: Number(value) });
  };
  const remove = () =>
    action.run(async () => {
      await api('DELETE', `${path}/${enc(d.id)}`);
      onChanged();
    });
  return (
    <tr data-testid={`deployment-row-${d.id}`} class={d.enabled ? '' : 'muted'}>
      <td data-label="Deployment">
        <span class="mono">{d.id}</span>
        <div class="hint">
          {d.vendor_type} {d.upstream_model ?? ''} {d.api_key_set ? `key …${d.api_key_last4 ?? '????'}` : 'no key'}
        </div>
        {d.base_url && <div class="hint breakable">{d.base_url}</div>}
      </td>
      <td data-label="Weight">{d.weight}</td>
      <td data-label="Caps">{capText(d)}</td>
      <td data-label="Health">
        <Health health={d.health} />
      </td>
      <td class="actions">
        {!own && (
          <>
            <button type="button" disabled={action.busy} onClick={weigh} data-testid="deployment-weight">
              Weight
            </button>
            <button type="button" disabled={action.busy} onClick={() => patch({ enabled: !d.enabled })} data-testid="deployment-toggle">
              {d.enabled ? 'Disable' : 'Enable'}
            </button>
            <ConfirmButton label="Delete" onConfirm={remove} disabled={action.busy} />
          </>
        )}
        <Alert error={action.error} />
      </td>
    </tr>
  );
}

function optionalNumber(data, name) {
  const text = String(data.get(name) ?? '').trim();
  return text ? Number(text) : undefined;
}

/** Add a deployment; its key is write-only. */
function DeploymentForm({ path, onSaved }) {
  const [vendor, setVendor] = useState('OpenAI');
  const [done, setDone] = useState(null);
  const action = useAction();
  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const data = new FormData(form);
      const body = {
        id: data.get('id').trim(),
        vendor_type: vendor,
        base_url: data.get('base_url').trim(),
        upstream_model: data.get('upstream_model').trim() || null,
        params: parseJsonObject(data.get('params'), 'Params'),
      };
      for (const name of ['weight', 'rpm_cap', 'tpm_cap']) {
        const value = optionalNumber(data, name);
        if (value !== undefined) body[name] = value;
      }
      const key = data.get('api_key');
      if (key) body.api_key = key;
      setDone(null);
      await api('POST', path, body);
      setDone(`Deployment ${body.id} added.`);
      form.reset();
      onSaved();
    });
  return (
    <form class="form-grid" onSubmit={submit} data-testid="deployment-form">
      <h3>Add a deployment</h3>
      <Alert error={action.error} />
      <Alert error={done} kind="info" />
      <label>
        Deployment id
        <input name="id" required maxLength={128} placeholder="eu-key2" data-testid="deployment-id" />
      </label>
      <label>
        Vendor
        <select name="vendor_type" value={vendor} onChange={(e) => setVendor(e.currentTarget.value)}>
          {VENDORS.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      <label>
        Base URL
        <input name="base_url" type="url" required={vendor !== 'Mock'} placeholder="https://api.openai.com/v1" data-testid="deployment-base-url" />
      </label>
      <label>
        Upstream model name
        <input name="upstream_model" placeholder="the model's" />
      </label>
      <label>
        Vendor API key
        <input name="api_key" type="password" autoComplete="new-password" placeholder="write-only" />
      </label>
      <label>
        Weight
        <input name="weight" inputMode="decimal" placeholder="1" />
      </label>
      <label>
        RPM cap
        <input name="rpm_cap" inputMode="numeric" placeholder="none" />
      </label>
      <label>
        TPM cap
        <input name="tpm_cap" inputMode="numeric" placeholder="none" />
      </label>
      <label class="wide">
        Params (JSON)
        <textarea name="params" rows={3} class="mono" spellcheck={false} placeholder='{"timeouts": {"first_byte": 30}}' />
      </label>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy} data-testid="deployment-submit">
          Add deployment
        </button>
      </div>
    </form>
  );
}
