// Keys go to the server one at a time: each is held in `queue` until the
// server acknowledges it (after its row is on disk), and only then is the
// next one sent. So a key the page no longer shows as pending is in the label
// file, and keys the server has not saved yet are counted on screen ("3 keys
// pending") instead of being lost unseen when R dies. Every key carries its
// counter, the image it was pressed on and the page's token; the server
// refuses a key pressed on an image this tab no longer shows.
(function() {
  var counter = 0;
  var queue = [];      // unacknowledged keys, oldest first; queue[0] is in flight
  var inFlight = false;
  var connected = false;
  // What the server answered, in order, for the page's own record (and tests).
  var acks = [];
  window.tvLabel = {acks: acks, pending: function() { return queue.length; }};
  var handled = /^([0-9]|ArrowLeft|ArrowRight|ArrowUp|ArrowDown|Tab|BackTab|Enter|u|s|t)$/;

  function token() {
    var meta = document.querySelector('meta[name="tv-label-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function shownImage() {
    var img = document.getElementById("tv-label-img");
    return img ? Number(img.getAttribute("data-i")) : 0;
  }
  function showPending() {
    var el = document.getElementById("tv-label-pending");
    if (!el) return;
    var n = queue.length;
    el.textContent = n === 0 ? "" : n + (n === 1 ? " key" : " keys") + " pending" +
      (connected ? "" : " (not saved: the app is not running)");
    el.classList.toggle("tv-shown", n > 0);
  }
  function pump() {
    if (inFlight || !connected || !queue.length || !window.Shiny || !Shiny.setInputValue) return;
    inFlight = true;
    Shiny.setInputValue("key", queue[0], {priority: "event"});
  }
  function press(key) {
    counter += 1;
    queue.push({key: key, n: counter, image: shownImage(), token: token()});
    showPending();
    pump();
  }
  function acknowledge(msg) {
    if (!queue.length || queue[0].n !== msg.n) return;
    var k = queue.shift();
    acks.push({n: k.n, key: k.key, image: k.image, ok: msg.ok});
    inFlight = false;
    showPending();
    pump();
  }
  function toggleHelp(show) {
    var help = document.getElementById("tv-label-help");
    if (help) help.classList.toggle("tv-shown", show);
  }

  var ready = false;
  function setup() {
    if (ready || !window.Shiny || !window.jQuery) return;
    ready = true;
    Shiny.addCustomMessageHandler("tv-label-ack", acknowledge);
    // After "init" has gone (shiny:connected fires before it is sent).
    $(document).on("shiny:sessioninitialized", function() { connected = true; pump(); });
    $(document).on("shiny:disconnected", function() { connected = false; showPending(); });
  }
  setup();
  document.addEventListener("DOMContentLoaded", setup);
  document.addEventListener("keydown", function(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    if (key === "?") { toggleHelp(); e.preventDefault(); return; }
    if (key === "Escape") { toggleHelp(false); return; }
    if (key === "Tab" && e.shiftKey) key = "BackTab";
    if (!handled.test(key)) return;
    e.preventDefault();
    press(key);
  });
  // Done goes through the queue too, so the app stops only after every key
  // before it is saved (captured before Shiny's own button handler sees it).
  document.addEventListener("click", function(e) {
    if (e.target.closest("#done")) {
      e.preventDefault();
      e.stopPropagation();
      press("Done");
      return;
    }
    var row = e.target.closest(".tv-label-classes:not(.tv-mode-scores) .tv-label-class");
    if (row) press(row.getAttribute("data-key"));
    if (e.target.closest(".tv-label-hint")) toggleHelp();
  }, true);
})();
