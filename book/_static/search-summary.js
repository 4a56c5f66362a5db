// Search result summaries from the article itself. Sphinx summarises the text of the whole main
// element, whose first characters are the page's toolbar, so a result whose search word is not
// found verbatim (Sphinx searches stems) read "....ipynb"; this gives it the article's prose only.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return;
  const original = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    const article = page.querySelector("article.bd-article");
    if (!article) return original(htmlString, anchor);
    const selectors = ".headerlink, script, style, .cell_input, .tag_parameters, .cell_output";
    article.querySelectorAll(selectors).forEach((element) => element.remove());
    return article.textContent.replace(/\s+/g, " ").trim();
  };
});
