/**
 * The jobs chart: Chart.js (served by the daemon as vendor/chart.js, a classic script that defines window.Chart)
 * with a data table beside it, so the numbers stay readable without the canvas or without the library.
 */
import { formatDay, formatHours, formatInteger } from './format.js';

/** Days (oldest first) summed into weeks of 7 days; the last week ends today. */
export function toWeeks(days) {
  const weeks = [];
  const offset = days.length % 7;
  for (let i = offset === 0 ? 0 : offset - 7; i < days.length; i += 7) {
    const chunk = days.slice(Math.max(0, i), i + 7);
    if (chunk.length === 0) continue;
    weeks.push({
      start: chunk[0].date,
      job_created: sum(chunk, 'job_created'),
      job_completed: sum(chunk, 'job_completed'),
      job_failed: sum(chunk, 'job_failed'),
      print_hours: Math.round(sum(chunk, 'print_hours') * 10) / 10,
    });
  }
  return weeks;
}

const sum = (rows, key) => rows.reduce((total, row) => total + (row[key] ?? 0), 0);

function cssColor(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

export class JobsChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLTableSectionElement} tableBody
   * @param {HTMLElement} summary
   */
  constructor(canvas, tableBody, summary) {
    this.canvas = canvas;
    this.tableBody = tableBody;
    this.summary = summary;
    this.chart = null;
    this.weeks = [];
    // Follow a theme switch while the page is open.
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => this.redraw());
  }

  /** @param {{date: string, job_created: number, job_completed: number, job_failed: number, print_hours: number}[]} days */
  update(days) {
    this.weeks = toWeeks(days);
    this.renderTable();
    this.renderSummary();
    this.redraw();
  }

  renderTable() {
    const rows = this.weeks.map((week) => {
      const tr = document.createElement('tr');
      const cells = [
        formatDay(week.start),
        formatInteger(week.job_created),
        formatInteger(week.job_completed),
        formatInteger(week.job_failed),
        formatHours(week.print_hours),
      ];
      cells.forEach((text, index) => {
        const cell = document.createElement(index === 0 ? 'th' : 'td');
        if (index === 0) cell.scope = 'row';
        cell.textContent = text;
        tr.append(cell);
      });
      return tr;
    });
    this.tableBody.replaceChildren(...rows);
  }

  renderSummary() {
    const created = sum(this.weeks, 'job_created');
    const completed = sum(this.weeks, 'job_completed');
    const failed = sum(this.weeks, 'job_failed');
    this.summary.textContent =
      created + completed + failed === 0
        ? 'No jobs in the last 12 weeks yet.'
        : `Last 12 weeks: ${formatInteger(created)} jobs started, ${formatInteger(completed)} completed, ${formatInteger(failed)} failed or cancelled.`;
  }

  redraw() {
    const Chart = window.Chart;
    if (!Chart) {
      // The library did not load: the table carries the data; open it so nothing is hidden.
      this.canvas.closest('.chart-box')?.setAttribute('hidden', '');
      this.tableBody.closest('details')?.setAttribute('open', '');
      return;
    }
    this.canvas.closest('.chart-box')?.removeAttribute('hidden');
    const text = cssColor('--text-secondary', '#727272');
    const grid = cssColor('--divider', 'rgba(0,0,0,0.12)');
    const data = {
      labels: this.weeks.map((week) => formatDay(week.start)),
      datasets: [
        {
          type: 'bar',
          label: 'Completed',
          data: this.weeks.map((week) => week.job_completed),
          backgroundColor: cssColor('--success', '#43a047'),
          stack: 'finished',
          borderRadius: 3,
        },
        {
          type: 'bar',
          label: 'Failed or cancelled',
          data: this.weeks.map((week) => week.job_failed),
          backgroundColor: cssColor('--error', '#db4437'),
          stack: 'finished',
          borderRadius: 3,
        },
        {
          type: 'line',
          label: 'Started',
          data: this.weeks.map((week) => week.job_created),
          borderColor: cssColor('--primary', '#03a9f4'),
          backgroundColor: cssColor('--primary', '#03a9f4'),
          pointRadius: 3,
          // Monotone: the line never swings below zero or above a week's real count.
          cubicInterpolationMode: 'monotone',
        },
      ],
    };
    if (this.chart) {
      this.chart.data = data;
      this.chart.options.scales.x.ticks.color = text;
      this.chart.options.scales.y.ticks.color = text;
      this.chart.options.scales.y.grid.color = grid;
      this.chart.options.plugins.legend.labels.color = text;
      this.chart.update('none');
      return;
    }
    this.chart = new Chart(this.canvas, {
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          x: { stacked: true, ticks: { color: text, maxRotation: 0, autoSkipPadding: 8 }, grid: { display: false } },
          y: { stacked: true, beginAtZero: true, ticks: { color: text, precision: 0 }, grid: { color: grid } },
        },
        plugins: { legend: { position: 'bottom', labels: { color: text, boxWidth: 12 } } },
      },
    });
  }
}
