// The signed-in user's jobs, with live progress; image results are shown inline.
import { api, enc } from '../api.js';
import { Link } from '../router.js';
import { Alert, Empty, Section, useAction, useInterval, useLoad, when } from '../ui.jsx';

const LIVE = new Set(['pending', 'running']);

export function Jobs() {
  const jobs = useLoad(() => api('GET', '/v1/jobs?limit=50').then((r) => r.data));
  const live = (jobs.data ?? []).some((j) => LIVE.has(j.status) || j.status === 'require_confirmation');
  useInterval(jobs.reload, live ? 700 : 4000);
  return (
    <>
      <h1>My jobs</h1>
      <p class="hint">
        Requests sent with <code>"async": true</code> run as jobs. Start one from the{' '}
        <Link to="/playground">playground</Link>.
      </p>
      <Alert error={jobs.error} />
      {jobs.data?.length === 0 && <Empty>No jobs yet.</Empty>}
      <div class="jobs" data-testid="jobs-list">
        {(jobs.data ?? []).map((job) => (
          <Job key={job.job_id} job={job} onChanged={jobs.reload} />
        ))}
      </div>
    </>
  );
}

function Job({ job, onChanged }) {
  const action = useAction();
  const cancel = () =>
    action.run(async () => {
      await api('POST', `/v1/jobs/${enc(job.job_id)}/cancel`);
      onChanged();
    });
  const percent = Math.round(job.progress * 100);
  return (
    <Section
      title={
        <>
          <span class="mono">{job.job_id}</span> <span class={`badge job-${job.status}`} data-testid="job-status">{job.status}</span>
        </>
      }
      testId={`job-${job.job_id}`}
      actions={
        LIVE.has(job.status) && (
          <button type="button" class="danger-outline" onClick={cancel} disabled={action.busy}>
            Cancel
          </button>
        )
      }
    >
      <p class="hint">
        {job.model} · started {when(job.created_at)} · updated {when(job.updated_at)}
      </p>
      <div class="progress">
        <progress max={100} value={percent} aria-label="Progress" data-testid="job-progress" />
        <span>{percent}%</span>
      </div>
      <Alert error={action.error} />
      {job.status === 'require_confirmation' && (
        <p class="alert alert-info">
          Waiting for your decision on a tool call: <Link to="/inbox">open the confirmations</Link>.
        </p>
      )}
      {job.error && <Alert error={`The job failed: ${job.error}`} />}
      {job.result && <Result result={job.result} />}
    </Section>
  );
}

function Result({ result }) {
  if (Array.isArray(result.data)) {
    return (
      <div class="images" data-testid="job-images">
        {result.data.map((image, i) => {
          const src = image.url ?? (image.b64_json ? `data:image/png;base64,${image.b64_json}` : null);
          return src ? <img key={i} src={src} alt={`Generated image ${i + 1}`} loading="lazy" /> : null;
        })}
      </div>
    );
  }
  const message = result.choices?.[0]?.message;
  if (message) {
    return (
      <div class="answer">
        <span data-testid="job-answer">{message.content ?? ''}</span>
        {result.usage && <div class="hint">{result.usage.total_tokens} tokens</div>}
      </div>
    );
  }
  return <pre class="json">{JSON.stringify(result, null, 2)}</pre>;
}
