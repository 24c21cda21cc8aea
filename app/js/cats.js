export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".ll-cats");
  const V = data.vars, K = data.cats, probs = data.probs, choice = data.choice;
  let html = "<table><tr><th></th>";
  for (let k = 0; k < K; k++) html += `<th>${k}</th>`;
  html += "</tr>";
  for (let v = 0; v < V; v++) {
    html += `<tr><th>var ${v}</th>`;
    for (let k = 0; k < K; k++) {
      const p = probs ? probs[v][k] : 0;
      const on = choice[v] === k ? " on" : "";
      const bg = `rgba(31,119,180,${(0.08 + 0.85 * p).toFixed(3)})`;
      html += `<td class="cell${on}" data-v="${v}" data-k="${k}" style="background:${bg}"`
        + ` title="variable ${v}, category ${k}: q = ${p.toFixed(3)}">${on ? "●" : ""}</td>`;
    }
    html += "</tr>";
  }
  root.innerHTML = html + "</table>";
  function click(ev) {
    const td = ev.target.closest("td.cell");
    if (!td) return;
    const v = +td.dataset.v, k = +td.dataset.k;
    root.querySelectorAll(`td.cell[data-v="${v}"]`).forEach((c) => {
      c.classList.remove("on"); c.textContent = "";
    });
    td.classList.add("on"); td.textContent = "●";
    setTriggerValue("flip", { v, k });
  }
  root.addEventListener("click", click);
  return () => root.removeEventListener("click", click);
}
