// Bar charts on Chart.js, registered piece by piece so the bundle stays small.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';
import { useEffect, useRef } from 'preact/hooks';
import { fmt } from './ui.jsx';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export const COLORS = { prompt: '#4c6ef5', completion: '#12b886', other: '#f59f00' };

function options(stacked, horizontal, whole) {
  const ticks = whole ? { precision: 0 } : {};
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    indexAxis: horizontal ? 'y' : 'x',
    scales: {
      x: { stacked, beginAtZero: true, ticks },
      y: { stacked, beginAtZero: true, ticks },
    },
    plugins: { legend: { position: 'bottom' } },
  };
}

/** A bar chart; `total` is mirrored into `data-total` and the caption, so it can be read. Token
 * charts count whole tokens; with a `unit` (a currency), `total` is shown as it is given. */
export function BarChart({ title, labels, datasets, total, unit, stacked = true, horizontal = false, testId }) {
  const canvas = useRef(null);
  const chart = useRef(null);

  useEffect(() => {
    chart.current = new Chart(canvas.current, {
      type: 'bar',
      data: { labels: [], datasets: [] },
      options: options(stacked, horizontal, !unit),
    });
    return () => chart.current.destroy();
  }, [stacked, horizontal, unit]);

  useEffect(() => {
    chart.current.data = {
      labels,
      datasets: datasets.map((set) => ({
        ...set,
        backgroundColor: set.color,
        borderRadius: 3,
        maxBarThickness: 48,
      })),
    };
    chart.current.update('none');
  }, [labels, datasets]);

  return (
    <figure class="chart" data-testid={testId} data-total={total}>
      <figcaption>
        <span>{title}</span>
        {total !== undefined && (
          <span class="chart-total">{unit ? `${total} ${unit}` : `${fmt(total)} tokens`}</span>
        )}
      </figcaption>
      <div class="chart-box">
        <canvas ref={canvas} role="img" aria-label={title} />
      </div>
      {labels.length === 0 && <p class="empty chart-empty">No usage yet.</p>}
    </figure>
  );
}

/** Prompt and completion tokens of usage rows, as two stacked datasets keyed by `key`. */
export function tokenSeries(rows, key) {
  return {
    labels: rows.map((row) => String(row[key] ?? '—')),
    datasets: [
      { label: 'Prompt tokens', data: rows.map((r) => r.prompt_tokens), color: COLORS.prompt },
      {
        label: 'Completion tokens',
        data: rows.map((r) => r.completion_tokens),
        color: COLORS.completion,
      },
    ],
  };
}
