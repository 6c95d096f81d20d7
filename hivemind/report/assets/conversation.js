(function(){
const D = JSON.parse(document.getElementById('report-data').textContent);
const $ = id => document.getElementById(id);
const dec = $('decoding'), rnd = $('round'), ag = $('agent'), lab = $('round-label');
D.decodings.forEach(d => dec.add(new Option(d, d)));
ag.add(new Option('every agent', ''));
D.agents.forEach(a => ag.add(new Option('agent ' + a, a)));
rnd.max = D.rounds - 1; rnd.value = D.rounds - 1;
const keys = Object.keys(D.measures);
const colourKey = keys[0];
const head = $('messages').tHead.rows[0];
keys.forEach(k => { const th = document.createElement('th'); th.textContent = D.measures[k]; head.appendChild(th); });
function fmt(v){ return v === null || v === undefined ? '-' : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3)); }
function colour(v, lo, hi){
  if (v === null || v === undefined) return '#cccccc';
  const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0.5;
  const a = [68, 1, 84], b = [33, 145, 140], c = [253, 231, 37];
  const m = t < 0.5 ? [a, b, t * 2] : [b, c, (t - 0.5) * 2];
  const x = m[0].map((u, i) => Math.round(u + (m[1][i] - u) * m[2]));
  return 'rgb(' + x.join(',') + ')';
}
function row(d, r, i, selected){
  const tr = document.createElement('tr');
  tr.dataset.round = r; tr.dataset.agent = D.agents[i];
  if (selected) tr.className = 'sel';
  const cells = [r, D.agents[i], D.heard_by[i].join(' ') || '-', D.text[d][r][i] === null ? '(no message)' : D.text[d][r][i]];
  cells.concat(keys.map(k => fmt(D.values[d][k][r][i]))).forEach((c, j) => {
    const td = document.createElement('td'); td.textContent = c; if (j === 0 || j > 3) td.className = 'num'; tr.appendChild(td);
  });
  return tr;
}
function draw(){
  const d = dec.value, r = +rnd.value, a = ag.value;
  lab.textContent = 'round ' + r + ' of ' + (D.rounds - 1);
  const body = $('messages').tBodies[0];
  body.replaceChildren();
  if (a === '') { D.agents.forEach((_, i) => body.appendChild(row(d, r, i, false))); }
  else { const i = D.agents.indexOf(a); for (let k = 0; k < D.rounds; k++) body.appendChild(row(d, k, i, k === r)); }
  if (!D.xy || !colourKey) return;
  const all = D.values[d][colourKey].flat().filter(v => v !== null);
  const lo = Math.min(...all), hi = Math.max(...all);
  D.agents.forEach((name, i) => {
    const c = $('node-' + i); const v = D.values[d][colourKey][r][i];
    c.setAttribute('fill', colour(v, lo, hi));
    c.setAttribute('stroke', name === a ? '#e63946' : '#333'); c.setAttribute('stroke-width', name === a ? 3 : 0.6);
    c.querySelector('title').textContent = 'agent ' + name + ': ' + D.measures[colourKey] + ' ' + fmt(v);
  });
  $('legend').textContent = 'colour: ' + D.measures[colourKey] + ' at round ' + r + ', from ' + fmt(lo) + ' (dark) to ' + fmt(hi) + ' (yellow)';
}
if (D.xy) {
  const svg = $('graph'), ns = 'http://www.w3.org/2000/svg';
  D.edges.forEach(e => { const l = document.createElementNS(ns, 'line');
    l.setAttribute('x1', D.xy[e[0]][0]); l.setAttribute('y1', D.xy[e[0]][1]); l.setAttribute('x2', D.xy[e[1]][0]); l.setAttribute('y2', D.xy[e[1]][1]);
    l.setAttribute('stroke', '#bbb'); svg.appendChild(l); });
  D.agents.forEach((name, i) => { const c = document.createElementNS(ns, 'circle');
    c.id = 'node-' + i; c.setAttribute('cx', D.xy[i][0]); c.setAttribute('cy', D.xy[i][1]); c.setAttribute('r', D.agents.length > 200 ? 4 : 9);
    c.appendChild(document.createElementNS(ns, 'title')); c.style.cursor = 'pointer';
    c.addEventListener('click', () => { ag.value = name; draw(); }); svg.appendChild(c);
    if (D.agents.length <= 60) { const t = document.createElementNS(ns, 'text'); t.textContent = name;
      t.setAttribute('x', D.xy[i][0] + 11); t.setAttribute('y', D.xy[i][1] + 4); t.setAttribute('font-size', 11); svg.appendChild(t); } });
}
[dec, rnd, ag].forEach(x => { x.addEventListener('input', draw); x.addEventListener('change', draw); });
$('prev').addEventListener('click', () => { rnd.value = Math.max(0, +rnd.value - 1); draw(); });
$('next').addEventListener('click', () => { rnd.value = Math.min(D.rounds - 1, +rnd.value + 1); draw(); });
draw();
})();
