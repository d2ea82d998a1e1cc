// labhub: loaded into configurable-http-proxy with NODE_OPTIONS=--require. On SIGUSR2 the
// proxy's HTTPS server reads the renewed certificate from disk: new connections get it, open
// ones (a kernel's websocket) stay, and the proxy keeps its routes.
"use strict";
const fs = require("fs");
const https = require("https");

const certFile = process.env.LABHUB_TLS_CERT;
const keyFile = process.env.LABHUB_TLS_KEY;
const servers = [];
const createServer = https.createServer;

https.createServer = function (options, ...rest) {
  const server = createServer.call(this, options, ...rest);
  // only the public server: the one started with the certificate labhub keeps
  if (options && options.cert && certFile && String(options.cert) === fs.readFileSync(certFile, "utf8")) {
    servers.push({ server, options });
  }
  return server;
};

process.on("SIGUSR2", () => {
  for (const { server, options } of servers) {
    try {
      server.setSecureContext({ ...options, cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
    } catch (err) {
      console.error(`labhub: the renewed certificate was not loaded: ${err.message}`);
    }
  }
});
