"use strict";
// Shared by the live pages: the page's data, a lookup by id, and an element builder that
// puts every value in as text or an attribute, never as markup.
const Live = (() => {
  const data = JSON.parse(document.getElementById("live-data").textContent);
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...kids) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const kid of kids) node.append(kid);
    return node;
  }
  return { data, $, el };
})();
