// The signed-in user's quota and usage, as a chart that follows new requests.
import { useMemo } from 'preact/hooks';
import { api } from '../api.js';
import { BarChart, tokenSeries } from '../chart.jsx';
import { Alert, fmt, limit, useInterval, useLoad } from '../ui.jsx';
import { Stat } from './admin-usage.jsx';

export function MyUsage() {
  const usage = useLoad(() => api('GET', '/v1/usage'));
  useInterval(usage.reload, 2000);
  const data = usage.data;
  const series = useMemo(() => tokenSeries(data?.models ?? [], 'model'), [data]);
  const total = (data?.models ?? []).reduce((sum, row) => sum + row.total_tokens, 0);
  const requests = (data?.models ?? []).reduce((sum, row) => sum + row.requests, 0);
  return (
    <>
      <h1>My usage</h1>
      <Alert error={usage.error} />
      {data && (
        <div class="stats">
          <Stat label="Tokens used" value={data.token_used} testId="stat-used" />
          <div class="stat">
            <span class="stat-label">Quota</span>
            <span class="stat-value">{limit(data.token_quota)}</span>
            {data.token_quota !== null && (
              <>
                <meter min={0} max={data.token_quota || 1} value={data.token_used} high={(data.token_quota || 1) * 0.8} optimum={0} />
                <span class="hint">{fmt(data.token_remaining)} left</span>
              </>
            )}
          </div>
          <div class="stat">
            <span class="stat-label">Requests per minute</span>
            <span class="stat-value">{limit(data.rpm_limit)}</span>
          </div>
          <Stat label="Requests" value={requests} />
        </div>
      )}
      <BarChart title="Tokens per model" {...series} total={total} horizontal testId="chart-my-usage" />
    </>
  );
}
