import { useState } from 'preact/hooks';
import { Alert } from '../ui.jsx';

/** Sign-in with an API key. The key goes to sessionStorage, never into the URL. */
export function SignIn({ onSignIn, notice }) {
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    const key = new FormData(event.currentTarget).get('key').trim();
    if (!key) return;
    setBusy(true);
    await onSignIn(key);
    setBusy(false);
  };
  return (
    <main class="signin">
      <form class="card signin-card" method="post" onSubmit={submit} data-testid="signin-form">
        <h1>
          <span class="logo" aria-hidden="true">L</span> Lowart console
        </h1>
        <p>Sign in with your API key. Admins see the admin views; every key sees its own usage, jobs and confirmations.</p>
        <Alert error={notice} testId="signin-error" />
        <label>
          API key
          <input
            name="key"
            type="password"
            autoComplete="off"
            spellcheck={false}
            placeholder="lw-…"
            required
            data-testid="signin-key"
          />
        </label>
        <button type="submit" class="primary" disabled={busy} data-testid="signin-submit">
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="hint">The key stays in this tab only (sessionStorage) and is sent to this gateway alone.</p>
      </form>
    </main>
  );
}
