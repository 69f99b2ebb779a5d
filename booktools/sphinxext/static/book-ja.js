// Sphinx 7.4's Japanese catalog translates the search page's closing sentence to an empty
// string, so a finished search never said so; supply the Japanese sentence.
(() => {
  const key = "Search finished, found ${resultCount} page(s) matching the search query.";
  // `Documentation` (doctools.js) is a global const, not a property of window
  if (typeof Documentation !== "undefined" && !Documentation.TRANSLATIONS[key]) {
    Documentation.TRANSLATIONS[key] =
      "検索が完了しました。${resultCount} 件見つかりました。";
  }
})();
