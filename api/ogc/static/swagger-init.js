// Swagger UI for the OGC API's OpenAPI document (templates/openapi/swagger.html): the document's URL comes
// from the page's data-url attribute, so the page needs no inline script.
"use strict";
(function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: node.dataset.url, domNode: node, deepLinking: true });
})();
