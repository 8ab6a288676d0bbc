// The console works without this file; it only brings the current state of a state-machine
// diagram into view when the diagram is wider than the screen (a phone).
document.querySelectorAll(".diagram").forEach(function (box) {
  var current = box.querySelector(".current");
  if (!current || box.scrollWidth <= box.clientWidth) return;
  var shape = current.getBoundingClientRect();
  var frame = box.getBoundingClientRect();
  box.scrollLeft += shape.left - frame.left - (frame.width - shape.width) / 2;
});
