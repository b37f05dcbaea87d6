// Small shared pieces: alerts, loading state, polling, copy, formatting.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describe } from './api.js';

/** An error (or a sentence) shown as text: never HTML. */
export function Alert({ error, kind = 'error', testId }) {
  if (!error) return null;
  const text = typeof error === 'string' ? error : describe(error);
  return (
    <p class={`alert alert-${kind}`} role={kind === 'error' ? 'alert' : 'status'} data-testid={testId}>
      {text}
    </p>
  );
}

/** Load data now and on `reload()`; a failed reload keeps the last good data. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const data = await load();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((old) => ({ data: old.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload };
}

/** Call `fn` every `ms` while mounted and `active`; paused while the tab is hidden. */
export function useInterval(fn, ms, active = true) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(() => {
      if (!document.hidden) saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms, active]);
}

/** Run an async action, tracking busy and error state for its button. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (action) => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, setError };
}

export function CopyButton({ text, label = 'Copy', testId }) {
  const [said, setSaid] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setSaid('Copied to the clipboard.');
    } catch {
      setSaid('Copying was refused: select the text and copy it yourself.');
    }
  };
  return (
    <span class="copy">
      <button type="button" onClick={copy} data-testid={testId}>
        {label}
      </button>
      {said && (
        <span class="hint" role="status">
          {said}
        </span>
      )}
    </span>
  );
}

/** A secret shown this one time, with a copy button. */
export function SecretOnce({ title, secret, onDone }) {
  return (
    <div class="secret" role="status" data-testid="secret-once">
      <strong>{title}</strong>
      <p class="hint">Shown only this once: store it now. The gateway keeps only its hash.</p>
      <div class="secret-row">
        <input
          class="mono"
          readOnly
          value={secret}
          aria-label="The new API key"
          data-testid="secret-value"
          onFocus={(e) => e.currentTarget.select()}
        />
        <CopyButton text={secret} testId="copy-secret" />
      </div>
      <button type="button" class="link" onClick={onDone}>
        I have stored it
      </button>
    </div>
  );
}

/** A button that asks once more before a destructive action. */
export function ConfirmButton({ label, confirmLabel, onConfirm, disabled, testId }) {
  const [armed, setArmed] = useState(false);
  useEffect(() => {
    if (!armed) return undefined;
    const id = setTimeout(() => setArmed(false), 4000);
    return () => clearTimeout(id);
  }, [armed]);
  if (!armed) {
    return (
      <button type="button" class="danger-outline" disabled={disabled} onClick={() => setArmed(true)} data-testid={testId}>
        {label}
      </button>
    );
  }
  return (
    <button
      type="button"
      class="danger"
      disabled={disabled}
      data-testid={testId && `${testId}-confirm`}
      onClick={() => {
        setArmed(false);
        onConfirm();
      }}
    >
      {confirmLabel ?? `Really ${label.toLowerCase()}?`}
    </button>
  );
}

const number = new Intl.NumberFormat('en');
export const fmt = (n) => (n === null || n === undefined ? '—' : number.format(n));
export const limit = (n) => (n === null || n === undefined ? 'unlimited' : number.format(n));

export function when(iso) {
  if (!iso) return '—';
  const date = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
  return date.toLocaleString('en-GB', { dateStyle: 'short', timeStyle: 'short' });
}

/** JSON text pretty-printed, or the text as it came when it is not JSON. */
export function pretty(value) {
  if (typeof value !== 'string') return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

/** Empty → null (unlimited); otherwise a whole number, or an error for the form. */
export function optionalCount(raw, name) {
  const text = String(raw ?? '').trim();
  if (text === '') return null;
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a whole number, or empty for unlimited.`);
  return Number(text);
}

export function Empty({ children }) {
  return <p class="empty">{children}</p>;
}

export function Section({ title, children, actions, testId }) {
  return (
    <section class="card" data-testid={testId}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}
