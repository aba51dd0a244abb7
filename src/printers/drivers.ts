/** Maps each configured printer to its protocol's driver; the fleet hands each one its update sink, logger and clock. */

import { BambuDriver } from './bambu/driver.js';
import type { DriverFactory } from './fleet.js';
import { PrusaLinkDriver } from './prusalink/driver.js';

export const createDriver: DriverFactory = (printer, id, deps) => {
  if (printer.type === 'bambu_lab') {
    return new BambuDriver(
      {
        id,
        host: printer.host,
        port: printer.port,
        serial: printer.serial,
        accessCode: printer.access_code,
        tls: printer.tls,
        verifyCertificate: printer.verify_certificate,
      },
      deps,
    );
  }
  return new PrusaLinkDriver(
    {
      id,
      name: printer.name,
      host: printer.host,
      username: printer.username,
      password: printer.password ?? '',
      apiKey: printer.api_key ?? '',
      pollIntervalS: printer.poll_interval_s,
    },
    deps,
  );
};
