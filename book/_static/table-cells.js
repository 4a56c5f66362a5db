// Numbers stay on one line ("86.4 ± 0.7"), words wrap: mark the cells of output tables that hold
// text, so that book.css can let only those wrap (pandas' Styler gives them no class of their own).
document.addEventListener("DOMContentLoaded", () => {
  const number = /^\s*([-−+<>≤≥~]?\s*\d[\d.,]*\s*(%|±.*)?|–|nan|NaN|True|False)\s*$/;
  document.querySelectorAll(".cell_output table td").forEach((cell) => {
    if (!number.test(cell.textContent)) cell.classList.add("text-cell");
  });
});
