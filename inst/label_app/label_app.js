// Keys go to the server one by one, in order ("event" priority sends each at
// once, so two quick presses are never merged into one).
(function() {
  var sent = 0;
  var handled = /^([0-9]|ArrowLeft|ArrowRight|ArrowUp|ArrowDown|Tab|BackTab|Enter|u|s|t)$/;
  function send(key) {
    if (!window.Shiny || !Shiny.setInputValue) return;
    sent += 1;
    Shiny.setInputValue("key", {key: key, n: sent}, {priority: "event"});
  }
  function toggleHelp(show) {
    var help = document.getElementById("tv-label-help");
    if (help) help.classList.toggle("tv-shown", show);
  }
  document.addEventListener("keydown", function(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (key === "?") { toggleHelp(); e.preventDefault(); return; }
    if (key === "Escape") { toggleHelp(false); return; }
    if (key === "Tab" && e.shiftKey) key = "BackTab";
    if (!handled.test(key)) return;
    e.preventDefault();
    send(key);
  });
  document.addEventListener("click", function(e) {
    var row = e.target.closest(".tv-label-classes:not(.tv-mode-scores) .tv-label-class");
    if (row) send(row.getAttribute("data-key"));
    if (e.target.closest(".tv-label-hint")) toggleHelp();
  });
})();
