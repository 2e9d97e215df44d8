// asbbook: a click or tap on a figure opens it full size (up to twice the column, scrollable);
// a click, a tap or Escape closes it. Each figure is also a link to its image file, so the same
// works without this script (and "open in new tab" gives the SVG itself).
(function () {
  "use strict";
  function figureImages() {
    return document.querySelectorAll(
      ".bd-article figure img, .bd-article .cell_output img"
    );
  }

  function makeLightbox() {
    const box = document.createElement("div");
    box.className = "asb-lightbox";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-label", "Figure at full size");
    const hint = document.createElement("span");
    hint.className = "asb-lightbox-hint";
    hint.textContent = "click, tap or Esc to close";
    const img = document.createElement("img");
    box.append(hint, img);
    box.addEventListener("click", () => close(box));
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape") close(box);
    });
    document.body.appendChild(box);
    return box;
  }

  function close(box) {
    box.classList.remove("asb-open");
    document.documentElement.style.overflow = "";
  }

  function open(box, source) {
    const img = box.querySelector("img");
    img.src = source.currentSrc || source.src;
    img.alt = source.alt;
    const natural = source.naturalWidth || source.width;
    // At least the natural size (a phone pans it), on a wide screen up to twice that.
    const width = Math.max(natural, Math.min(window.innerWidth * 0.96, natural * 2));
    img.style.width = `${Math.round(width)}px`;
    box.classList.add("asb-open");
    document.documentElement.style.overflow = "hidden";
    box.scrollTop = 0;
    box.scrollLeft = 0;
  }

  function init() {
    let box = null;
    figureImages().forEach((img) => {
      if (img.closest("a")) return;
      const link = document.createElement("a");
      link.href = img.currentSrc || img.src;
      link.className = "asb-zoom";
      link.title = "Open the figure at full size";
      img.parentNode.insertBefore(link, img);
      link.appendChild(img);
      link.addEventListener("click", (e) => {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
        e.preventDefault();
        box = box || makeLightbox();
        open(box, img);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
