// The signed-in user's paused tool calls: approve or reject each, or all; then the answer.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Alert, Empty, Section, pretty, useInterval, useLoad, when } from '../ui.jsx';

function answerText(body) {
  if (body?.status === 'require_confirmation') return null;
  const message = body?.choices?.[0]?.message;
  if (message) return message.content ?? '';
  if (Array.isArray(body?.content)) return body.content.map((b) => b.text ?? '').join('');
  return JSON.stringify(body);
}

export function Inbox() {
  const sessions = useLoad(() => api('GET', '/v1/tools/sessions').then((r) => r.data));
  useInterval(sessions.reload, 2000);
  const [decisions, setDecisions] = useState({}); // session id → { call id → true | false }
  const [busy, setBusy] = useState(new Set());
  const [outcomes, setOutcomes] = useState([]); // newest first
  const [error, setError] = useState(null);

  const submit = async (session, chosen) => {
    const id = session.session_id;
    setBusy((b) => new Set(b).add(id));
    setError(null);
    const approved = session.tool_calls.filter((c) => chosen[c.id]).map((c) => c.id);
    try {
      const body = await api('POST', '/v1/tools/confirm', { session_id: id, approved_ids: approved });
      setOutcomes((o) => [{ session, approved, body }, ...o]);
    } catch (err) {
      setError(err);
    } finally {
      setBusy((b) => {
        const next = new Set(b);
        next.delete(id);
        return next;
      });
      setDecisions(({ [id]: _, ...rest }) => rest);
      sessions.reload();
    }
  };

  const decide = (session, callId, approve) => {
    const chosen = { ...(decisions[session.session_id] ?? {}), [callId]: approve };
    if (session.tool_calls.every((c) => c.id in chosen)) submit(session, chosen);
    else setDecisions({ ...decisions, [session.session_id]: chosen });
  };
  const decideAll = (session, approve) =>
    submit(session, Object.fromEntries(session.tool_calls.map((c) => [c.id, approve])));
  const pending = (sessions.data ?? []).filter((s) => !busy.has(s.session_id));
  const everything = (approve) => pending.forEach((s) => decideAll(s, approve));

  return (
    <>
      <h1>Confirmations</h1>
      <p class="hint">
        Tool calls that a policy holds for you. The model continues once you decide; a call you reject is
        reported to it as rejected.
      </p>
      <Alert error={sessions.error ?? error} />
      {outcomes.length > 0 && (
        <Section title="Answers" testId="answers">
          {outcomes.map(({ session, approved, body }) => (
            <Outcome key={session.session_id} session={session} approved={approved} body={body} />
          ))}
        </Section>
      )}
      {sessions.data && pending.length === 0 && busy.size === 0 && (
        <Empty>
          <span data-testid="inbox-empty">No tool calls are waiting for you.</span>
        </Empty>
      )}
      {pending.length > 1 && (
        <div class="bulk">
          <button type="button" class="primary" onClick={() => everything(true)} data-testid="approve-everything">
            Approve all {pending.length} sessions
          </button>
          <button type="button" class="danger-outline" onClick={() => everything(false)} data-testid="reject-everything">
            Reject all
          </button>
        </div>
      )}
      <div data-testid="inbox-sessions">
        {(sessions.data ?? []).map((session) => (
          <Session
            key={session.session_id}
            session={session}
            chosen={decisions[session.session_id] ?? {}}
            busy={busy.has(session.session_id)}
            onDecide={(callId, approve) => decide(session, callId, approve)}
            onAll={(approve) => decideAll(session, approve)}
          />
        ))}
      </div>
    </>
  );
}

function Session({ session, chosen, busy, onDecide, onAll }) {
  const several = session.tool_calls.length > 1;
  return (
    <Section
      title={<span>Paused {session.job_id ? 'job' : 'request'}</span>}
      testId="inbox-session"
      actions={
        <span class="actions">
          <button type="button" class="primary" disabled={busy} onClick={() => onAll(true)} data-testid="approve-all">
            Approve all
          </button>
          <button type="button" class="danger-outline" disabled={busy} onClick={() => onAll(false)} data-testid="reject-all">
            Reject all
          </button>
        </span>
      }
    >
      <p class="hint">
        <span class="mono">{session.session_id}</span>
        {session.job_id && (
          <>
            {' '}· job <span class="mono">{session.job_id}</span>
          </>
        )}{' '}
        · expires {when(session.expires_at)}
      </p>
      {several && <p class="hint">Decide each call; the session is sent once every call has a decision.</p>}
      <ul class="calls">
        {session.tool_calls.map((call) => (
          <li key={call.id} class="call" data-testid="tool-call">
            <div class="call-head">
              <span>
                <span class="hint">server</span> <strong class="mono" data-testid="call-server">{call.server ?? '—'}</strong>{' '}
                <span class="hint">tool</span> <strong class="mono" data-testid="call-tool">{call.name}</strong>
              </span>
              <span class="actions">
                {call.id in chosen ? (
                  <span class={`badge ${chosen[call.id] ? 'status-active' : 'status-disabled'}`}>
                    {chosen[call.id] ? 'approved' : 'rejected'}
                  </span>
                ) : (
                  <>
                    <button type="button" class="primary" disabled={busy} onClick={() => onDecide(call.id, true)} data-testid="approve-call">
                      Approve
                    </button>
                    <button type="button" class="danger-outline" disabled={busy} onClick={() => onDecide(call.id, false)} data-testid="reject-call">
                      Reject
                    </button>
                  </>
                )}
              </span>
            </div>
            <pre class="json" data-testid="call-arguments">{pretty(call.arguments)}</pre>
          </li>
        ))}
      </ul>
      {busy && <p class="hint" role="status">Running the approved calls…</p>}
    </Section>
  );
}

function Outcome({ session, approved, body }) {
  const text = answerText(body);
  const names = session.tool_calls.map((c) => `${c.name} ${approved.includes(c.id) ? 'approved' : 'rejected'}`);
  return (
    <div class="outcome" data-testid="outcome">
      <p class="hint">{names.join(', ')}</p>
      {text === null ? (
        <p class="alert alert-info">The model asked for another tool call: it is waiting below.</p>
      ) : (
        <div class="answer" data-testid="outcome-answer">
          {text}
        </div>
      )}
    </div>
  );
}
