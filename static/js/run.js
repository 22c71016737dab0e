// Keyboard on the run page: j/k move between items, x toggles done, n opens the item's note.
(function () {
  "use strict";
  let current = null;

  function items() {
    return Array.from(document.querySelectorAll("[data-item-id]"));
  }

  function focusItem(el) {
    if (!el) return;
    if (current) current.classList.remove("focused");
    current = el;
    el.classList.add("focused");
    el.focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest" });
  }

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const list = items();
    if (!list.length) return;
    // The focused item may have been swapped by a live update: find it again by id.
    if (current && !document.body.contains(current)) {
      current = document.getElementById(current.id);
    }
    const index = current ? list.indexOf(current) : -1;
    if (event.key === "j") {
      focusItem(list[Math.min(index + 1, list.length - 1)]);
    } else if (event.key === "k") {
      focusItem(list[Math.max(index - 1, 0)]);
    } else if (event.key === "x" && current) {
      const toggle = current.querySelector('[data-action="toggle"]');
      if (toggle && !toggle.disabled) toggle.click();
    } else if (event.key === "n" && current) {
      const menu = current.querySelector(".item-menu");
      if (!menu) return;
      menu.open = true;
      const note = menu.querySelector(".note-form textarea");
      if (note) {
        note.focus();
      } else {
        // The menu's forms load when it first opens.
        menu.addEventListener("htmx:afterSwap", function () {
          const loaded = menu.querySelector(".note-form textarea");
          if (loaded) loaded.focus();
        }, { once: true });
      }
    } else {
      return;
    }
    event.preventDefault();
  });

  // Keep the keyboard focus on an item that a swap just replaced.
  document.body.addEventListener("htmx:afterSwap", function () {
    if (current && !document.body.contains(current)) {
      const again = document.getElementById(current.id);
      if (again) {
        current = again;
        again.classList.add("focused");
      }
    }
  });
})();
