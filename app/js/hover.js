export default function (component) {
  const { data, parentElement } = component;
  const hint = parentElement.querySelector('.ll-hint');
  if (hint) hint.textContent = data.hint || '';
  const S = (window.__llHover = window.__llHover || { tag: null, data: null });
  S.data = data;
  S.setTrigger = component.setTriggerValue;
  S.tag = data.tag;
  let tip = document.getElementById('ll-hover-tip');
  if (!tip) {
    tip = document.createElement('div');
    tip.id = 'll-hover-tip';
    tip.style.cssText = 'position:fixed;z-index:100000;pointer-events:none;display:none;' +
      'background:#fff;border:1px solid #888;border-radius:6px;padding:4px;' +
      'box-shadow:0 2px 8px rgba(0,0,0,.25);font:12px sans-serif;color:#222;text-align:center';
    const img = document.createElement('div');
    img.className = 'll-img';
    img.style.cssText = 'image-rendering:pixelated;background-repeat:no-repeat;margin:auto';
    const cap = document.createElement('div');
    cap.className = 'll-cap';
    tip.appendChild(img);
    tip.appendChild(cap);
    document.body.appendChild(tip);
  }
  const img = tip.querySelector('.ll-img');
  const cap = tip.querySelector('.ll-cap');
  const px = data.tip_px;
  const sx = px / data.cell_w, sy = px / data.cell_h;
  img.style.width = px + 'px';
  img.style.height = Math.round(data.cell_h * sy) + 'px';
  img.style.backgroundImage = 'url(' + data.sprite + ')';
  img.style.backgroundSize = (data.sheet_w * sx) + 'px ' + (data.sheet_h * sy) + 'px';

  const show = (ev) => {
    const d = S.data;
    const p = ev.points && ev.points[0];
    const pos = p ? Number(p.customdata) : NaN;
    if (!(pos >= 0 && pos < d.labels.length)) return;
    const col = pos % d.cols, row = Math.floor(pos / d.cols);
    img.style.backgroundPosition = (-col * d.cell_w * sx) + 'px ' + (-row * d.cell_h * sy) + 'px';
    cap.textContent = d.class_names[d.labels[pos]] + ' · #' + d.index[pos];
    tip.dataset.pos = String(pos);
    tip.style.display = 'block';
    const e = ev.event || {};
    const x = (e.clientX || 0) + 18, y = (e.clientY || 0) + 18;
    const w = tip.offsetWidth, h = tip.offsetHeight;
    tip.style.left = Math.min(x, window.innerWidth - w - 4) + 'px';
    tip.style.top = Math.min(y, window.innerHeight - h - 4) + 'px';
  };
  const hide = () => { tip.style.display = 'none'; };
  // a click on a dot (plotly_click: drag-select mode does not select single points)
  const click = (ev) => {
    const p = ev.points && ev.points[0];
    const pos = p ? Number(p.customdata) : NaN;
    if (!(pos >= 0 && pos < S.data.labels.length)) return;
    S.setTrigger('clicked', { tag: S.tag, index: S.data.index[pos], pos: pos });
  };

  const attach = () => {
    document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
      const meta = gd.layout && gd.layout.meta;
      if (!meta || meta.ll_tag !== S.tag || gd.__llTag === S.tag || !gd.on) return;
      if (gd.__llHandlers) {
        gd.removeListener('plotly_hover', gd.__llHandlers[0]);
        gd.removeListener('plotly_unhover', gd.__llHandlers[1]);
        gd.removeListener('plotly_click', gd.__llHandlers[2]);
      }
      gd.on('plotly_hover', show);
      gd.on('plotly_unhover', hide);
      gd.on('plotly_click', click);
      gd.__llHandlers = [show, hide, click];
      gd.__llTag = S.tag;
    });
  };
  attach();
  if (S.timer) clearInterval(S.timer);
  S.timer = setInterval(attach, 400);
  return () => { clearInterval(S.timer); S.timer = null; hide(); };
}
