// Client routes under /ui (the gateway answers index.html for each of them).
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';

const BASE = '/ui';
const EVENT = 'lowart:navigate';

export function currentRoute() {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  return path.replace(/\/+$/, '') || '/';
}

export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', BASE + to);
  else history.pushState(null, '', BASE + to);
  window.dispatchEvent(new Event(EVENT));
}

export function useRoute() {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    window.addEventListener('popstate', update);
    window.addEventListener(EVENT, update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener(EVENT, update);
    };
  }, []);
  return route;
}

export function Link({ to, children, ...props }) {
  const follow = (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(to);
  };
  return h('a', { href: BASE + to, onClick: follow, ...props }, children);
}
