// Starts Swagger UI on /v1/docs. A file of its own, not inline in the page: Keyguard's
// Content-Security-Policy allows scripts from this origin only ("script-src 'self'").
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
    // No validator badge: it would load an image from swagger.io.
    validatorUrl: null,
  });
})();
