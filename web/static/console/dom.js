/* Small DOM helpers of the console. Text from the API is only ever inserted as text (textContent). */

/** A new element with an optional class and text. */
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** A button with a label and a click handler. */
export function button(label, onClick, cls = 'gl-button') {
  const b = el('button', cls, label);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}
