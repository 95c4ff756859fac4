// Swagger UI over the API's own document, with no call to another origin: validatorUrl null turns off
// the badge that would ask validator.swagger.io to check the document.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
});
