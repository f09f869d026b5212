// Charts as inline SVG written by hand: bars with their numbers written beside them, so a chart
// reads without colour and a test (or a screen reader, through each chart's title and the
// table that goes with it) can read every value.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(width, height, label) {
  const root = el('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': label,
    preserveAspectRatio: 'xMinYMid meet',
  });
  root.append(el('title', {}, label));
  return root;
}

/** `root` drawn at the size of its view box (the stylesheet may still shrink it to fit). */
function natural(root) {
  const [, , w, h] = root.getAttribute('viewBox').split(' ');
  root.setAttribute('width', w);
  root.setAttribute('height', h);
  return root;
}

/**
 * A bar split into segments (`{key, label, value}`), each as wide as its share of the sum;
 * each segment carries `data-key`, `data-value`, a tooltip and a class `seg-KEY` (its colour);
 * the words beside the bar name every count, so it reads without colour.
 */
export function stackedBar(segments, label) {
  const total = segments.reduce((sum, s) => sum + s.value, 0);
  const root = svg(100, 6, label);
  root.classList.add('stacked');
  root.setAttribute('preserveAspectRatio', 'none');
  let x = 0;
  for (const s of segments) {
    const w = total > 0 ? (s.value / total) * 100 : 0;
    const rect = el('rect', {
      x: x.toFixed(3),
      y: 0,
      width: w.toFixed(3),
      height: 6,
      class: `seg seg-${s.key}`,
      'data-key': s.key,
      'data-value': s.value,
    });
    rect.append(el('title', {}, `${s.label}: ${s.value}`));
    root.append(rect);
    x += w;
  }
  return root;
}

/**
 * Horizontal bars, one per `{label, value}`, labelled on the left and valued on the right; the
 * longest bar is the largest value.
 */
export function barChart(items, label) {
  const rowH = 22;
  const labelW = 150;
  const barW = 240;
  const height = Math.max(1, items.length) * rowH + 4;
  const root = natural(svg(labelW + barW + 60, height, label));
  root.classList.add('bars');
  const max = Math.max(1, ...items.map((i) => i.value));
  items.forEach((item, n) => {
    const y = n * rowH + 2;
    const g = el('g', { class: 'bar', 'data-label': item.label, 'data-value': item.value });
    g.append(el('text', { x: labelW - 6, y: y + 14, 'text-anchor': 'end', class: 'label' }, item.label));
    const w = Math.max(item.value > 0 ? 1 : 0, (item.value / max) * barW);
    g.append(el('rect', { x: labelW, y: y + 3, width: w.toFixed(2), height: rowH - 8, class: 'fill' }));
    g.append(el('text', { x: labelW + w + 6, y: y + 14, class: 'value' }, String(item.value)));
    root.append(g);
  });
  if (items.length === 0) {
    root.append(el('text', { x: 4, y: 16, class: 'label' }, 'Nothing yet'));
  }
  return root;
}

/**
 * Vertical bars over time (`{label, value}` in order), the value written above each bar and
 * the label (an hour) under the first, the last and every few bars.
 */
export function columnChart(items, label) {
  const colW = 26;
  const chartH = 120;
  const width = Math.max(1, items.length) * colW + 10;
  const root = natural(svg(width, chartH + 40, label));
  root.classList.add('columns');
  const max = Math.max(1, ...items.map((i) => i.value));
  const every = Math.max(1, Math.ceil(items.length / 8));
  items.forEach((item, n) => {
    const x = n * colW + 5;
    const h = (item.value / max) * (chartH - 16);
    const g = el('g', { class: 'bar', 'data-label': item.label, 'data-value': item.value });
    g.append(el('title', {}, `${item.label}: ${item.value}`));
    g.append(el('rect', { x: x + 3, y: (chartH - h).toFixed(2), width: colW - 6, height: h.toFixed(2), class: 'fill' }));
    g.append(el('text', { x: x + colW / 2, y: (chartH - h - 3).toFixed(2), 'text-anchor': 'middle', class: 'value' }, String(item.value)));
    if (n % every === 0 || n === items.length - 1) {
      g.append(el('text', { x: x + colW / 2, y: chartH + 14, 'text-anchor': 'middle', class: 'label' }, item.short || item.label));
    }
    root.append(g);
  });
  if (items.length === 0) {
    root.append(el('text', { x: 4, y: 16, class: 'label' }, 'Nothing yet'));
  }
  return root;
}

/** One use of a limit: `used` of `limit` as a bar up to the cap. */
export function meter(used, limit, label) {
  const root = svg(100, 6, label);
  root.classList.add('meter');
  root.setAttribute('preserveAspectRatio', 'none');
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  root.append(el('rect', { x: 0, y: 0, width: 100, height: 6, class: 'track' }));
  root.append(el('rect', {
    x: 0, y: 0, width: (share * 100).toFixed(2), height: 6,
    class: share >= 1 ? 'fill full' : 'fill', 'data-used': used, 'data-limit': limit,
  }));
  return root;
}
