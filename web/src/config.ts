// The instance configuration (GET /api/v1/config), shared without pulling
// Leaflet into the entry chunk: main.tsx sets it, the map module reads it.

import type { InstanceConfig } from "./api";

let current: InstanceConfig | null = null;

export function setInstanceConfig(config: InstanceConfig | null): void {
  current = config;
}

export function instanceConfig(): InstanceConfig | null {
  return current;
}
