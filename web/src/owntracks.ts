// The OwnTracks app imports a whole configuration from a link
// (owntracks:///config?inline=<base64 JSON>), which the devices page shows
// as a QR code: HTTP mode, this server's URL, basic auth with the token.

/** The OwnTracks configuration a QR code carries (HTTP mode, basic auth with the token). */
export function ownTracksConfig(origin: string, user: string, device: string, token: string): Record<string, unknown> {
  const tid = device.replace(/[^A-Za-z0-9]/g, "").slice(0, 2).toUpperCase() || "PO";
  return { _type: "configuration", mode: 3, url: `${origin}/api/owntracks`, auth: true, username: user, password: token, deviceId: device, tid };
}

export function ownTracksConfigUrl(config: Record<string, unknown>): string {
  const json = JSON.stringify(config);
  const base64 = btoa(String.fromCharCode(...new TextEncoder().encode(json)));
  return `owntracks:///config?inline=${encodeURIComponent(base64)}`;
}
