// Admin: a model's transform script (docs/transforms.md): the editor, its entry points and
// on_error, and a test pane that runs the editor's text on a sample body.
import { useState } from 'preact/hooks';
import { api, enc } from '../api.js';
import { Alert, ConfirmButton, pretty, useAction, useLoad } from '../ui.jsx';
import { parseJsonObject } from './fields.jsx';

const TEMPLATE = `def on_request(req, ctx):
    # req: the request in the caller's format; ctx: user_id, model, request_id, format
    return req
`;
const ENTRIES = ['on_request', 'on_response', 'on_chunk'];
const SAMPLE = JSON.stringify({ model: '', messages: [{ role: 'user', content: 'Hello' }] }, null, 2);

async function scriptOf(modelId) {
  const { data } = await api('GET', '/admin/transforms');
  return data.find((t) => t.model_id === modelId) ?? null;
}

/** The interpreter's message keeps its lines (line, column and the caret under the code). */
function ScriptError({ error }) {
  if (!error) return null;
  return (
    <>
      <Alert error={error} />
      {error.message?.includes('transform.star') && (
        <pre class="json" data-testid="script-error">{error.message}</pre>
      )}
    </>
  );
}

export function ScriptEditor({ model }) {
  const loaded = useLoad(() => scriptOf(model.model_id), [model.model_id]);
  if (loaded.loading) return <p class="hint">Loading…</p>;
  return <Editor key={loaded.data?.id ?? 'new'} model={model} script={loaded.data} onSaved={loaded.reload} />;
}

function Editor({ model, script, onSaved }) {
  const [source, setSource] = useState(script?.source ?? TEMPLATE);
  const [entries, setEntries] = useState(
    Object.fromEntries(ENTRIES.map((e) => [e, script ? script[e] : e === 'on_request'])),
  );
  const [onError, setOnError] = useState(script?.on_error ?? 'fail');
  const [enabled, setEnabled] = useState(script ? script.enabled : true);
  const [saved, setSaved] = useState(null);
  const action = useAction();
  const body = () => ({ source, ...entries, on_error: onError, enabled });
  const save = () =>
    action.run(async () => {
      setSaved(null);
      if (script) await api('PATCH', `/admin/transforms/${script.id}`, body());
      else await api('POST', '/admin/transforms', { model_id: model.model_id, ...body() });
      setSaved('Script saved: it runs on every instance within seconds.');
      onSaved();
    });
  const remove = () =>
    action.run(async () => {
      await api('DELETE', `/admin/transforms/${script.id}`);
      onSaved();
    });
  return (
    <div class="panel" data-testid="script-editor">
      <h3>Script of {model.model_id}</h3>
      <p class="hint">Starlark, run in a sandboxed worker before admission and on the answers.</p>
      <ScriptError error={action.error} />
      <Alert error={saved} kind="info" />
      <label class="wide">
        Source
        <textarea
          rows={12}
          class="mono"
          spellcheck={false}
          value={source}
          onInput={(e) => setSource(e.currentTarget.value)}
          data-testid="script-source"
        />
      </label>
      <div class="inline-form">
        {ENTRIES.map((entry) => (
          <label class="check" key={entry}>
            <input
              type="checkbox"
              checked={entries[entry]}
              onChange={(e) => setEntries({ ...entries, [entry]: e.currentTarget.checked })}
            />
            <span class="mono">{entry}</span>
          </label>
        ))}
        <label>
          On error
          <select value={onError} onChange={(e) => setOnError(e.currentTarget.value)}>
            <option value="fail">fail the request (500)</option>
            <option value="skip">pass it through as it was</option>
          </select>
        </label>
        <label class="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Enabled
        </label>
      </div>
      <div class="form-actions">
        <button type="button" class="primary" onClick={save} disabled={action.busy} data-testid="script-save">
          Save script
        </button>
        {script && <ConfirmButton label="Delete script" onConfirm={remove} disabled={action.busy} testId="script-delete" />}
      </div>
      {script ? <TestPane script={script} source={source} /> : <p class="hint">Save the script to test it.</p>}
    </div>
  );
}

function TestPane({ script, source }) {
  const [entry, setEntry] = useState('on_request');
  const [format, setFormat] = useState('openai');
  const [sample, setSample] = useState(SAMPLE.replace('""', JSON.stringify(script.model_id ?? '')));
  const [result, setResult] = useState(null);
  const action = useAction();
  const run = () =>
    action.run(async () => {
      setResult(null);
      const body = parseJsonObject(sample, 'The sample') ?? {};
      setResult(await api('POST', `/admin/transforms/${script.id}/test`, { body, entry, format, source }));
    });
  return (
    <div class="panel" data-testid="script-test">
      <h3>Test</h3>
      <div class="inline-form">
        <label>
          Entry point
          <select value={entry} onChange={(e) => setEntry(e.currentTarget.value)}>
            {ENTRIES.map((e) => (
              <option key={e} value={e}>
                {e}
              </option>
            ))}
          </select>
        </label>
        <label>
          Caller's format
          <select value={format} onChange={(e) => setFormat(e.currentTarget.value)}>
            <option value="openai">OpenAI</option>
            <option value="anthropic">Anthropic</option>
            <option value="responses">OpenAI Responses</option>
          </select>
        </label>
      </div>
      <label class="wide">
        Sample (JSON)
        <textarea
          rows={6}
          class="mono"
          spellcheck={false}
          value={sample}
          onInput={(e) => setSample(e.currentTarget.value)}
          data-testid="script-sample"
        />
      </label>
      <Alert error={action.error} />
      <div class="form-actions">
        <button type="button" onClick={run} disabled={action.busy} data-testid="script-run">
          Run on the sample (the editor's text, unsaved)
        </button>
      </div>
      {result && (
        <div data-testid="script-result">
          <p>
            Outcome: <span class="badge">{result.outcome}</span>
          </p>
          {result.message && <pre class="json">{result.message}</pre>}
          {result.outcome === 'ok' && <pre class="json">{pretty(result.result)}</pre>}
        </div>
      )}
    </div>
  );
}
