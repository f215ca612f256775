"""In-page probe of the live monitor's drawn points, for tests and ``bench/dashboard_bench.py``."""

from __future__ import annotations

PROBE_JS = """
() => {
  if (window.__wb) return true;
  const CAP = 5000;  // records kept per source, in a preallocated ring: the probe itself does not grow
  window.__wb = {log: {}};
  const record = () => {
    const rec = {max: -1, n: 0, buf: new Float64Array(3 * CAP)};
    Object.defineProperty(rec, 'seen', {enumerable: false, get() {
      const out = [], k0 = Math.max(0, this.n - CAP);
      for (let k = k0; k < this.n; k++) {
        const i = 3 * (k % CAP);
        out.push([this.buf[i], this.buf[i + 1], this.buf[i + 2]]);
      }
      return out;
    }});
    return rec;
  };
  window.__wb.dump = () => {
    const out = {};
    for (const [n, rec] of Object.entries(window.__wb.log)) out[n] = {max: rec.max, seen: rec.seen};
    return out;
  };
  const seen = (key, last, len) => {
    const rec = window.__wb.log[key] || (window.__wb.log[key] = record());
    if (last > rec.max) {
      rec.max = last;
      const i = 3 * (rec.n % CAP);
      rec.buf[i] = Date.now() / 1000; rec.buf[i + 1] = last; rec.buf[i + 2] = len;
      rec.n += 1;
    }
  };
  // the points of one run's row in a metric's multi-line source, NaN room cut off
  // (the newest such source: after a rebuild the replaced one may linger in the document's model list)
  window.__wb.row = (run, metric) => {
    let out = null;
    for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
      for (const m of doc.all_models) {
        if (m.name !== 'wb-ml|' + metric || !m.data || !m.data.run) continue;
        const i = Array.from(m.data.run).indexOf(run);
        if (i < 0) continue;
        const st = m.data.step[i];
        let n = st.length;
        while (n > 0 && Number.isNaN(st[n - 1])) n--;
        out = {x: Array.from(m.data.xs[i].slice(0, n)), y: Array.from(m.data.yr[i].slice(0, n)),
               step: Array.from(st.slice(0, n))};
      }
    }
    return out;
  };
  const scan = () => {
    for (const doc of (window.Bokeh && window.Bokeh.documents) || []) {
      for (const m of doc.all_models) {
        const n = m.name;
        if (!n || !m.data || !m.data.step) continue;
        if (n.startsWith('wb-ml|')) {
          const metric = n.slice(6), runs = m.data.run, steps = m.data.step;
          for (let r = 0; r < runs.length; r++) {
            const st = steps[r];
            let k = st.length;
            while (k > 0 && Number.isNaN(st[k - 1])) k--;
            seen('wb-src|' + runs[r] + '|' + metric, k ? st[k - 1] : -1, k);
          }
        } else if (n.startsWith('wb-grp|')) {
          const st = m.data.step, len = st.length;
          seen(n, len ? st[len - 1] : -1, len);
        }
      }
    }
    requestAnimationFrame(scan);
  };
  requestAnimationFrame(scan);
  return true;
}
"""
"""JavaScript for tests and ``bench/dashboard_bench.py``: installs a per-frame scan of the page's Bokeh
sources (each metric's multi-line source ``wb-ml|<metric>``, a row per run, logged as
``wb-src|<run>|<metric>``; each group's ``wb-grp|<group>|<metric>``) that records ``[time (s), last step, points]`` each time a new step is
drawn (just before the frame is painted): ``window.__wb.log[name].seen`` (the last 5 000, kept in a
preallocated ring so the probe does not grow the heap it helps measure), ``window.__wb.dump()`` for all,
``window.__wb.row(run, metric)`` the points of one run as drawn."""
