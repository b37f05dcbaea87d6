// The shell: sign-in, the role of the key, navigation and the current view.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, describe, onUnauthorized, request, session } from './api.js';
import { Link, navigate, useRoute } from './router.js';
import { useInterval } from './ui.jsx';
import { AdminUsage } from './views/admin-usage.jsx';
import { Audit } from './views/audit.jsx';
import { Inbox } from './views/inbox.jsx';
import { Jobs } from './views/jobs.jsx';
import { Models } from './views/models.jsx';
import { MyUsage } from './views/my-usage.jsx';
import { Playground } from './views/playground.jsx';
import { RequestLogs } from './views/request-logs.jsx';
import { SignIn } from './views/signin.jsx';
import { AdminSpend } from './views/spend.jsx';
import { Tools } from './views/tools.jsx';
import { Users } from './views/users.jsx';

const ADMIN_VIEWS = [
  { path: '/users', label: 'Users', view: Users },
  { path: '/models', label: 'Models', view: Models },
  { path: '/tools', label: 'Tools', view: Tools },
  { path: '/usage-all', label: 'All usage', view: AdminUsage },
  { path: '/spend', label: 'Spend', view: AdminSpend },
  { path: '/audit', label: 'Audit log', view: Audit },
  { path: '/request-logs', label: 'Request logs', view: RequestLogs },
];
const USER_VIEWS = [
  { path: '/usage', label: 'My usage', view: MyUsage },
  { path: '/playground', label: 'Playground', view: Playground },
  { path: '/jobs', label: 'My jobs', view: Jobs },
  { path: '/inbox', label: 'Confirmations', view: Inbox },
];

/** Who the key belongs to: `/v1/usage` checks the key, `/admin/users` tells an admin. */
async function whoIs(key) {
  const usage = await api('GET', '/v1/usage', undefined, { key });
  try {
    await request('GET', '/admin/users', undefined, { key });
    return { userId: usage.user_id, admin: true };
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return { userId: usage.user_id, admin: false };
    throw error;
  }
}

export function App() {
  const [who, setWho] = useState(null);
  const [checking, setChecking] = useState(Boolean(session.key()));
  const [notice, setNotice] = useState(null);

  const signIn = useCallback(async (key) => {
    try {
      const found = await whoIs(key);
      session.set(key);
      setNotice(null);
      setWho(found);
    } catch (error) {
      session.clear();
      setWho(null);
      setNotice(describe(error));
    } finally {
      setChecking(false);
    }
  }, []);

  const signOut = useCallback((message = null) => {
    session.clear();
    setWho(null);
    setNotice(message);
  }, []);

  useEffect(() => {
    const key = session.key();
    if (key) signIn(key);
  }, [signIn]);

  // A key revoked (or a user disabled) while signed in: back to sign-in, with the reason.
  useEffect(() => onUnauthorized((error) => signOut(describe(error))), [signOut]);

  if (checking) return <main class="signin"><p class="hint">Checking your key…</p></main>;
  if (!who) return <SignIn onSignIn={signIn} notice={notice} />;
  return <Shell who={who} onSignOut={() => signOut()} />;
}

function Shell({ who, onSignOut }) {
  const route = useRoute();
  const views = who.admin ? [...ADMIN_VIEWS, ...USER_VIEWS] : USER_VIEWS;
  const home = views[0].path;
  const current = views.find((v) => v.path === route);
  const pending = usePendingCount();

  useEffect(() => {
    if (route === '/') navigate(home, { replace: true });
  }, [route, home]);

  const View = current?.view;
  const refused = ADMIN_VIEWS.some((v) => v.path === route) && !who.admin;
  return (
    <div class="shell">
      <header class="topbar">
        <a class="brand" href="/ui/" onClick={(e) => (e.preventDefault(), navigate(home))}>
          <span class="logo" aria-hidden="true">L</span>
          <span>Lowart</span>
        </a>
        <span class="who" data-testid="who">
          <span class="mono">{who.userId}</span>
          <span class={`badge ${who.admin ? 'badge-admin' : ''}`} data-testid="role">
            {who.admin ? 'admin' : 'user'}
          </span>
        </span>
        <button type="button" class="ghost" onClick={onSignOut} data-testid="signout">
          Sign out
        </button>
      </header>
      <nav class="nav" aria-label="Views">
        {who.admin && <span class="nav-group">Admin</span>}
        {ADMIN_VIEWS.filter(() => who.admin).map((v) => (
          <NavLink key={v.path} view={v} route={route} />
        ))}
        {who.admin && <span class="nav-group">Mine</span>}
        {USER_VIEWS.map((v) => (
          <NavLink key={v.path} view={v} route={route} count={v.path === '/inbox' ? pending : 0} />
        ))}
      </nav>
      <main class="content" data-testid={`view${route.replace(/\//g, '-')}`}>
        {refused && <p class="alert alert-error" role="alert">This view needs an admin key (403).</p>}
        {!refused && View && <View who={who} />}
        {!refused && !View && route !== '/' && (
          <p class="alert alert-error" role="alert">
            There is no view here. <Link to={home}>Go to {views[0].label}</Link>.
          </p>
        )}
      </main>
    </div>
  );
}

function NavLink({ view, route, count = 0 }) {
  const active = route === view.path;
  return (
    <Link to={view.path} class={`nav-link ${active ? 'active' : ''}`} aria-current={active ? 'page' : undefined} data-testid={`nav${view.path.replace(/\//g, '-')}`}>
      {view.label}
      {count > 0 && (
        <span class="count" data-testid="pending-count" aria-label={`${count} waiting`}>
          {count}
        </span>
      )}
    </Link>
  );
}

/** How many paused tool calls wait for this key's user, for the nav badge. */
function usePendingCount() {
  const [count, setCount] = useState(0);
  const poll = useCallback(async () => {
    try {
      const { data } = await api('GET', '/v1/tools/sessions');
      setCount(data.reduce((n, s) => n + s.tool_calls.length, 0));
    } catch {
      // the views show errors; the badge just keeps its last count
    }
  }, []);
  useEffect(() => {
    poll();
  }, [poll]);
  useInterval(poll, 3000);
  return count;
}
