// Admin: models (the vendor key is write-only), their fallback order, their deployments,
// enabled or not.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, ConfirmButton, Empty, Section, useAction, useLoad } from '../ui.jsx';
import { Deployments } from './deployments.jsx';
import { parseJsonObject } from './fields.jsx';
import { ScriptEditor } from './transform.jsx';

const VENDORS = ['OpenAI', 'Anthropic', 'ComfyUI', 'Mock'];

async function loadModels() {
  const { data } = await api('GET', '/admin/models');
  const chains = await Promise.all(
    data.map((m) => api('GET', `/admin/models/${enc(m.model_id)}/fallbacks`).then((r) => r.fallbacks)),
  );
  return data.map((model, i) => ({ ...model, fallbacks: chains[i] }));
}

export function Models() {
  const models = useLoad(loadModels);
  const [open, setOpen] = useState(null);
  const toggle = (id, panel) => setOpen((cur) => (cur?.id === id && cur.panel === panel ? null : { id, panel }));
  const ids = (models.data ?? []).map((m) => m.model_id);
  return (
    <>
      <h1>Models</h1>
      <Section title="Register a model" testId="register-model">
        <ModelForm onSaved={models.reload} />
      </Section>
      <Section title="All models" testId="models-table">
        <Alert error={models.error} />
        {models.data?.length === 0 && <Empty>No models yet.</Empty>}
        {models.data && models.data.length > 0 && (
          <table class="table">
            <thead>
              <tr>
                <th>Model</th>
                <th>Vendor</th>
                <th>Vendor key</th>
                <th>Fallbacks, in order</th>
                <th>State</th>
                <th aria-label="Actions" />
              </tr>
            </thead>
            <tbody>
              {models.data.map((model) => (
                <ModelRow
                  key={model.model_id}
                  model={model}
                  ids={ids}
                  open={open?.id === model.model_id ? open.panel : null}
                  onToggle={(panel) => toggle(model.model_id, panel)}
                  onChanged={models.reload}
                />
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function ModelRow({ model, ids, open, onToggle, onChanged }) {
  const action = useAction();
  const patch = (fields) =>
    action.run(async () => {
      await api('PATCH', `/admin/models/${enc(model.model_id)}`, fields);
      onChanged();
    });
  const remove = () =>
    action.run(async () => {
      await api('DELETE', `/admin/models/${enc(model.model_id)}`);
      onChanged();
    });
  return (
    <>
      <tr data-testid={`model-row-${model.model_id}`} class={model.enabled ? '' : 'muted'}>
        <td data-label="Model">
          <span class="mono">{model.model_id}</span>
          {model.upstream_model && <div class="hint">upstream: {model.upstream_model}</div>}
          {model.base_url && <div class="hint breakable">{model.base_url}</div>}
        </td>
        <td data-label="Vendor">{model.vendor_type}</td>
        <td data-label="Vendor key">{model.api_key_set ? `set, ends …${model.api_key_last4 ?? '????'}` : 'none'}</td>
        <td data-label="Fallbacks" data-testid="model-fallbacks">
          {model.fallbacks.length ? model.fallbacks.join(' → ') : '—'}
        </td>
        <td data-label="State">
          <span class={`badge ${model.enabled ? 'status-active' : 'status-disabled'}`}>
            {model.enabled ? 'enabled' : 'disabled'}
          </span>
        </td>
        <td class="actions">
          <button type="button" onClick={() => onToggle('edit')} aria-expanded={open === 'edit'} data-testid="model-edit">
            Edit
          </button>
          <button type="button" onClick={() => onToggle('fallbacks')} aria-expanded={open === 'fallbacks'} data-testid="model-fallbacks-edit">
            Fallbacks
          </button>
          <button type="button" onClick={() => onToggle('script')} aria-expanded={open === 'script'} data-testid="model-script">
            Script
          </button>
          <button type="button" onClick={() => onToggle('deployments')} aria-expanded={open === 'deployments'} data-testid="model-deployments">
            Deployments
          </button>
          <button type="button" disabled={action.busy} onClick={() => patch({ enabled: !model.enabled })} data-testid="model-toggle">
            {model.enabled ? 'Disable' : 'Enable'}
          </button>
          <ConfirmButton label="Delete" onConfirm={remove} disabled={action.busy} />
          <Alert error={action.error} />
        </td>
      </tr>
      {open && (
        <tr class="panel-row">
          <td colSpan={6}>
            {open === 'edit' && <ModelForm model={model} onSaved={onChanged} />}
            {open === 'fallbacks' && <Fallbacks model={model} ids={ids} onSaved={onChanged} />}
            {open === 'script' && <ScriptEditor model={model} />}
            {open === 'deployments' && <Deployments model={model} />}
          </td>
        </tr>
      )}
    </>
  );
}

/** Register (no `model`) or edit a model. The key field is never filled: it is write-only. */
function ModelForm({ model, onSaved }) {
  const editing = Boolean(model);
  const [vendor, setVendor] = useState(model?.vendor_type ?? 'Mock');
  const [done, setDone] = useState(null);
  const action = useAction();

  const submit = (event) =>
    action.run(async () => {
      event.preventDefault();
      const form = event.currentTarget;
      const data = new FormData(form);
      const body = {
        vendor_type: vendor,
        base_url: data.get('base_url').trim(),
        upstream_model: data.get('upstream_model').trim() || null,
        params: parseJsonObject(data.get('params'), 'Params'),
        enabled: data.get('enabled') === 'on',
      };
      const timeout = data.get('timeout_s').trim();
      if (timeout) body.timeout_s = Number(timeout);
      const key = data.get('api_key');
      if (key) body.api_key = key;
      else if (data.get('clear_key')) body.api_key = null;
      setDone(null);
      if (editing) {
        await api('PATCH', `/admin/models/${enc(model.model_id)}`, body);
        setDone('Saved.');
        form.elements.api_key.value = '';
      } else {
        const id = data.get('model_id').trim();
        await api('POST', '/admin/models', { model_id: id, ...body });
        setDone(`Model ${id} registered.`);
        form.reset();
        setVendor('Mock');
      }
      onSaved();
    });

  return (
    <form class="form-grid" onSubmit={submit} data-testid={editing ? 'edit-model' : 'model-form'}>
      {editing && <h3>Edit {model.model_id}</h3>}
      <Alert error={action.error} />
      <Alert error={done} kind="info" />
      {!editing && (
        <label>
          Model id
          <input name="model_id" required maxLength={128} placeholder="gpt-4o" data-testid="model-id" />
        </label>
      )}
      <label>
        Vendor
        <select name="vendor_type" value={vendor} onChange={(e) => setVendor(e.currentTarget.value)} data-testid="model-vendor">
          {VENDORS.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
      <label>
        Base URL
        <input
          name="base_url"
          type="url"
          defaultValue={model?.base_url ?? ''}
          required={vendor !== 'Mock'}
          placeholder={vendor === 'Mock' ? 'not needed for Mock' : 'https://api.openai.com/v1'}
          data-testid="model-base-url"
        />
      </label>
      <label>
        Upstream model name
        <input name="upstream_model" defaultValue={model?.upstream_model ?? ''} placeholder="same as the id" />
      </label>
      <label>
        Vendor API key
        <input
          name="api_key"
          type="password"
          autoComplete="new-password"
          placeholder={model?.api_key_set ? `set (…${model.api_key_last4 ?? ''}): type to replace` : 'write-only'}
          data-testid="model-api-key"
        />
      </label>
      {editing && model.api_key_set && (
        <label class="check">
          <input type="checkbox" name="clear_key" value="1" /> Clear the stored key
        </label>
      )}
      <label>
        Timeout (s)
        <input name="timeout_s" inputMode="decimal" defaultValue={model?.timeout_s ?? ''} placeholder="600" />
      </label>
      <label class="wide">
        Params (JSON)
        <textarea
          name="params"
          rows={4}
          class="mono"
          spellcheck={false}
          defaultValue={model?.params ? JSON.stringify(model.params, null, 2) : ''}
          placeholder='{"text": "Hello"}'
          data-testid="model-params"
        />
      </label>
      <label class="check">
        <input type="checkbox" name="enabled" defaultChecked={model ? model.enabled : true} /> Enabled
      </label>
      <div class="form-actions">
        <button type="submit" class="primary" disabled={action.busy} data-testid="model-submit">
          {editing ? 'Save model' : 'Register model'}
        </button>
      </div>
    </form>
  );
}

function Fallbacks({ model, ids, onSaved }) {
  const [chain, setChain] = useState(model.fallbacks);
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const candidates = ids.filter((id) => id !== model.model_id && !chain.includes(id));
  const move = (i, step) => {
    const next = [...chain];
    [next[i], next[i + step]] = [next[i + step], next[i]];
    setChain(next);
  };
  const save = () =>
    action.run(async () => {
      setSaved(false);
      await api('PUT', `/admin/models/${enc(model.model_id)}/fallbacks`, { fallbacks: chain });
      setSaved(true);
      onSaved();
    });
  return (
    <div class="panel" data-testid="fallbacks-editor">
      <h3>Fallbacks of {model.model_id}</h3>
      <p class="hint">Tried in this order when {model.model_id} fails before its first byte.</p>
      <Alert error={action.error} />
      {saved && <Alert error="Fallback order saved." kind="info" />}
      {chain.length === 0 && <Empty>No fallbacks.</Empty>}
      <ol class="chain">
        {chain.map((id, i) => (
          <li key={id}>
            <span class="mono">{id}</span>
            <span class="chain-actions">
              <button type="button" disabled={i === 0} onClick={() => move(i, -1)} aria-label={`Move ${id} up`}>↑</button>
              <button type="button" disabled={i === chain.length - 1} onClick={() => move(i, 1)} aria-label={`Move ${id} down`}>↓</button>
              <button type="button" onClick={() => setChain(chain.filter((c) => c !== id))} aria-label={`Remove ${id}`}>✕</button>
            </span>
          </li>
        ))}
      </ol>
      <div class="inline-form">
        <label>
          Add a fallback
          <select
            value=""
            onChange={(e) => e.currentTarget.value && setChain([...chain, e.currentTarget.value])}
            data-testid="fallback-add"
          >
            <option value="">Choose a model…</option>
            {candidates.map((id) => (
              <option key={id} value={id}>
                {id}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="primary" onClick={save} disabled={action.busy} data-testid="fallback-save">
          Save order
        </button>
      </div>
    </div>
  );
}
