// Chat with a model, streamed, showing the model that served and the tokens used: through Chat
// Completions, or through the Responses API (the gateway keeps the conversation by its ids).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, request, sseData } from '../api.js';
import { Link } from '../router.js';
import { Alert, Section, fmt, useLoad } from '../ui.jsx';

export function Playground() {
  const models = useLoad(() => api('GET', '/v1/models').then((r) => r.data));
  const [model, setModel] = useState('');
  const list = models.data ?? [];
  const current = list.find((m) => m.id === model) ?? list[0];
  const image = current?.owned_by?.toLowerCase() === 'comfyui';
  return (
    <>
      <h1>Playground</h1>
      <Alert error={models.error} />
      {models.data && list.length === 0 && <Alert error="No model is open to this key." kind="info" />}
      {current && (
        <Section
          title="Model"
          actions={
            <select
              value={current.id}
              onChange={(e) => setModel(e.currentTarget.value)}
              aria-label="Model"
              data-testid="pg-model"
            >
              {list.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id} ({m.owned_by})
                </option>
              ))}
            </select>
          }
        >
          {image ? <ImageForm model={current.id} /> : <Chat key={current.id} model={current.id} />}
        </Section>
      )}
    </>
  );
}

function Chat({ model }) {
  const [messages, setMessages] = useState([]);
  const [reply, setReply] = useState(null); // the streaming answer
  const [meta, setMeta] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);
  const [wire, setWire] = useState('chat');
  const previous = useRef(null); // the last response id (Responses API)
  const abort = useRef(null);
  const log = useRef(null);
  useEffect(() => {
    log.current?.scrollTo?.(0, log.current.scrollHeight);
  }, [messages, reply]);
  useEffect(() => () => abort.current?.abort(), []);

  const send = async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const text = data.get('prompt').trim();
    if (!text || abort.current) return;
    const history = [...messages, { role: 'user', content: text }];
    const servers = String(data.get('servers') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const body = { model, messages: history };
    const tools = servers.map((label) => ({ type: 'mcp', server_label: label }));
    if (servers.length) body.tools = tools;
    setMessages(history);
    setError(null);
    setNotice(null);
    setMeta(null);
    form.elements.prompt.value = '';
    const controller = new AbortController();
    abort.current = controller;
    setBusy(true);
    try {
      if (wire === 'responses') await respond(text, tools, controller.signal);
      else if (data.get('async')) await runAsJob(body);
      else await stream(body, controller.signal);
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    } finally {
      abort.current = null;
      setBusy(false);
    }
  };

  const runAsJob = async (body) => {
    const started = await api('POST', '/v1/chat/completions', { ...body, async: true });
    setNotice(
      <>
        Job <span class="mono">{started.job_id}</span> started: follow it in <Link to="/jobs">My jobs</Link>.
      </>,
    );
  };

  const stream = async (body, signal) => {
    const response = await request(
      'POST',
      '/v1/chat/completions',
      { ...body, stream: true, stream_options: { include_usage: true } },
      { signal },
    );
    const served = response.headers.get('x-lowart-model');
    let text = '';
    let chunks = 0;
    let usage = null;
    setReply('');
    setMeta({ served, chunks, usage, streaming: true });
    try {
      for await (const data of sseData(response)) {
        const chunk = JSON.parse(data);
        if (chunk.error) throw new ApiError(502, chunk.error.message ?? 'The stream failed.', chunk.error.code);
        chunks += 1;
        text += chunk.choices?.[0]?.delta?.content ?? '';
        if (chunk.usage) usage = chunk.usage;
        if (chunk.status === 'require_confirmation') showPause(chunk);
        setReply(text);
        setMeta({ served, chunks, usage, streaming: true });
      }
    } finally {
      setMeta({ served, chunks, usage, streaming: false });
      setReply(null);
      if (text) setMessages((m) => [...m, { role: 'assistant', content: text }]);
    }
  };

  const respond = async (text, tools, signal) => {
    const body = { model, input: text, stream: true };
    if (previous.current) body.previous_response_id = previous.current;
    if (tools.length) body.tools = tools;
    const response = await request('POST', '/v1/responses', body, { signal });
    const served = response.headers.get('x-lowart-model');
    let reply = '';
    let events = 0;
    let usage = null;
    setReply('');
    setMeta({ served, chunks: events, usage, streaming: true });
    try {
      for await (const data of sseData(response)) {
        const event = JSON.parse(data);
        events += 1;
        if (event.type === 'error') throw new ApiError(502, event.message ?? 'The stream failed.', event.code);
        if (event.type === 'response.output_text.delta') reply += event.delta;
        if (event.response?.usage) {
          const u = event.response.usage;
          usage = { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.total_tokens };
        }
        if (event.type === 'response.completed' || event.type === 'response.incomplete') {
          previous.current = event.response.id;
          const asked = event.response.output.filter((item) => item.type === 'mcp_approval_request');
          if (asked.length) showPause({ tool_calls: asked.map((i) => ({ name: i.name, server: i.server_label })) });
        }
        setReply(reply);
        setMeta({ served, chunks: events, usage, streaming: true });
      }
    } finally {
      setMeta({ served, chunks: events, usage, streaming: false });
      setReply(null);
      if (reply) setMessages((m) => [...m, { role: 'assistant', content: reply }]);
    }
  };

  const showPause = (chunk) =>
    setNotice(
      <span data-testid="pg-paused">
        The model wants to call {chunk.tool_calls.map((c) => `${c.name} on ${c.server}`).join(', ')}. It waits for your
        decision in <Link to="/inbox">Confirmations</Link>.
      </span>,
    );

  return (
    <div class="chat">
      <div class="chat-log" ref={log} data-testid="pg-log" aria-live="polite">
        {messages.length === 0 && reply === null && <p class="empty">Say something to {model}.</p>}
        {messages.map((m, i) => (
          <div key={i} class={`bubble bubble-${m.role}`} data-testid={`pg-${m.role}`}>
            {m.content}
          </div>
        ))}
        {reply !== null && (
          <div class="bubble bubble-assistant streaming" data-testid="pg-streaming">
            {reply || '…'}
          </div>
        )}
      </div>
      {meta && (
        <p class="meta" data-testid="pg-meta" data-streaming={String(meta.streaming)} data-chunks={meta.chunks}>
          {wire === 'responses' && previous.current && (
            <span>
              response <code data-testid="pg-response-id">{previous.current}</code>
            </span>
          )}
          <span>
            served by <code data-testid="pg-served">{meta.served ?? '—'}</code>
          </span>
          <span data-testid="pg-tokens" data-total={meta.usage?.total_tokens ?? ''}>
            {meta.usage
              ? `${fmt(meta.usage.prompt_tokens)} prompt + ${fmt(meta.usage.completion_tokens)} completion = ${fmt(meta.usage.total_tokens)} tokens`
              : meta.streaming
                ? 'streaming…'
                : 'no usage reported'}
          </span>
          <span>
            {meta.chunks} {wire === 'responses' ? 'events' : 'chunks'}
          </span>
        </p>
      )}
      {notice && <p class="alert alert-info">{notice}</p>}
      <Alert error={error} testId="pg-error" />
      <form class="chat-form" onSubmit={send}>
        <textarea
          name="prompt"
          rows={3}
          placeholder="Your message"
          aria-label="Message"
          data-testid="pg-prompt"
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) e.currentTarget.form.requestSubmit();
          }}
        />
        <div class="chat-options">
          <label>
            MCP servers
            <input name="servers" placeholder="weather, files" data-testid="pg-servers" />
          </label>
          <label>
            API
            <select value={wire} onChange={(e) => setWire(e.currentTarget.value)} data-testid="pg-wire">
              <option value="chat">Chat Completions</option>
              <option value="responses">Responses</option>
            </select>
          </label>
          <label class="check">
            <input type="checkbox" name="async" value="1" data-testid="pg-async" disabled={wire === 'responses'} /> Run
            as a job
          </label>
          <span class="actions">
            <button
              type="button"
              class="ghost"
              onClick={() => (setMessages([]), setMeta(null), setNotice(null), (previous.current = null))}
            >
              Clear
            </button>
            {busy && (
              <button type="button" class="danger-outline" onClick={() => abort.current?.abort()}>
                Stop
              </button>
            )}
            <button type="submit" class="primary" disabled={busy} data-testid="pg-send">
              Send
            </button>
          </span>
        </div>
      </form>
    </div>
  );
}

function ImageForm({ model }) {
  const [started, setStarted] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    setError(null);
    try {
      const body = { model, prompt: data.get('prompt').trim(), n: Number(data.get('n')), async: true };
      if (data.get('size')) body.size = data.get('size');
      setStarted(await api('POST', '/v1/images/generations', body));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="form-grid" onSubmit={submit} data-testid="pg-image-form">
      <label class="wide">
        Prompt
        <textarea name="prompt" rows={3} required data-testid="pg-image-prompt" />
      </label>
      <label>
        Size
        <select name="size">
          <option value="">model default</option>
          <option>512x512</option>
          <option>768x768</option>
          <option>1024x1024</option>
        </select>
      </label>
      <label>
        Images
        <input name="n" type="number" min={1} max={4} defaultValue={1} />
      </label>
      <Alert error={error} />
      {started && (
        <p class="alert alert-info" data-testid="pg-image-started">
          Job <span class="mono">{started.job_id}</span> started: watch it in <Link to="/jobs">My jobs</Link>.
        </p>
      )}
      <div class="form-actions">
        <button type="submit" class="primary" data-testid="pg-image-send">
          Generate
        </button>
      </div>
    </form>
  );
}
