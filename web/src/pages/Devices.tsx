// Devices: each phone or tracker, when it was last seen and its battery;
// create one and a token for it, then follow the setup of the app with the
// exact URLs of this server. OwnTracks can import its whole configuration
// from a QR code (owntracks:///config?inline=…), so that is offered too.

import QRCode from "qrcode";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, get, type Device, type Me, type Token } from "../api";
import { ago, dateTime, formatBattery } from "../format";
import { ownTracksConfig, ownTracksConfigUrl } from "../owntracks";
import { CopyButton, ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";
import { DeleteButton, UndoToast, type DeleteOutcome } from "../components/Deleting";

interface NewToken extends Token {
  token: string;
}

export function Devices({ me }: { me: Me }) {
  const devices = useAsync(() => get<{ devices: Device[] }>("/api/v1/devices"), []);
  const tokens = useAsync(() => get<{ tokens: Token[] }>("/api/v1/tokens"), []);
  const [deleted, setDeleted] = useState<DeleteOutcome | null>(null);
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [fresh, setFresh] = useState<{ device: string; token: string } | null>(null);

  const createDevice = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const device = await api<{ id: number; name: string }>("POST", "/api/v1/devices", { name: name.trim() });
      const token = await api<NewToken>("POST", `/api/v1/devices/${device.id}/tokens`, { label: "web setup" });
      setFresh({ device: device.name, token: token.token });
      setName("");
      devices.reload();
      tokens.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const newToken = async (device: Device) => {
    setError(undefined);
    try {
      const token = await api<NewToken>("POST", `/api/v1/devices/${device.id}/tokens`, { label: "web setup" });
      setFresh({ device: device.name, token: token.token });
      tokens.reload();
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (token: Token) => {
    if (!confirm(`Revoke the token "${token.label || token.id}" of ${token.device.name}? Apps using it stop sending.`)) return;
    try {
      await api("DELETE", `/api/v1/tokens/${token.id}`);
      tokens.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <PageTitle>Devices</PageTitle>
      <form class="toolbar" onSubmit={createDevice}>
        <label>
          New device <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="phone" required maxLength={64} name="device-name" />
        </label>
        <button type="submit" class="primary small" disabled={busy || !name.trim()}>
          Create device and token
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {fresh && <Setup user={me.user.name} device={fresh.device} token={fresh.token} />}
      {devices.loading && !devices.data && <Loading label="Loading devices…" />}
      {devices.error !== undefined && <ErrorBox error={devices.error} retry={devices.reload} />}
      {devices.data && devices.data.devices.length === 0 && <p class="muted">No devices yet. Create one above, or import files: imports make a device for their source.</p>}
      {devices.data && devices.data.devices.length > 0 && (
        <table class="data stack">
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Last seen</th>
              <th scope="col">Battery</th>
              <th scope="col">Last position</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {devices.data.devices.map((device) => {
              const seen = device.last_seen ?? device.last_point?.time ?? null;
              const position = device.last_position ?? device.last_point ?? null;
              return (
                <tr data-device={device.name}>
                  <td class="lead">
                    <DeviceName device={device} onChanged={devices.reload} />
                  </td>
                  <td data-label="Last seen" title={dateTime(seen)}>
                    {ago(seen)}
                  </td>
                  <td data-label="Battery">{formatBattery(device.battery)}</td>
                  <td data-label="Last position">{position ? `${position.lat.toFixed(5)}, ${position.lon.toFixed(5)}` : "–"}</td>
                  <td class="actions">
                    <button type="button" class="small" onClick={() => newToken(device)}>
                      New token + setup
                    </button>{" "}
                    <DeleteButton
                      label="Delete its points"
                      testId={`delete-device-${device.name}`}
                      question={<>Delete every point {device.name} ever recorded? Its tokens keep working, and what it sends from now on is stored.</>}
                      selection={{ device: device.name }}
                      onDeleted={(outcome) => {
                        setDeleted(outcome);
                        devices.reload();
                      }}
                    />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {deleted && <UndoToast outcome={deleted} onUndone={devices.reload} onClose={() => setDeleted(null)} />}
      <h2>Tokens</h2>
      {tokens.data && tokens.data.tokens.length === 0 && <p class="muted">No tokens.</p>}
      {tokens.data && tokens.data.tokens.length > 0 && (
        <table class="data stack">
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Label</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.data.tokens.map((token) => (
              <tr>
                <td class="lead">{token.device.name}</td>
                <td data-label="Label">{token.label || "–"}</td>
                <td data-label="Created">{dateTime(token.created)}</td>
                <td data-label="Last used">{ago(token.last_used)}</td>
                <td class="actions">
                  <button type="button" class="small danger" onClick={() => revoke(token)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The device's label (or name), with an inline form to rename it for the app. */
function DeviceName({ device, onChanged }: { device: Device; onChanged: () => void }) {
  const [editing, setEditing] = useState(false);
  const [label, setLabel] = useState(device.label ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const inputId = `device-label-${device.id}`;
  const save = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api("PUT", `/api/v1/devices/${device.id}/label`, { label: label.trim() || null });
      setEditing(false);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (editing) {
    return (
      <form class="inline-edit" onSubmit={save}>
        <label class="visually-hidden" for={inputId}>
          Label for {device.name}
        </label>
        <input id={inputId} value={label} onInput={(e) => setLabel(e.currentTarget.value)} placeholder={device.name} maxLength={64} autoFocus />
        <button type="submit" class="small primary" disabled={busy}>
          Save
        </button>
        <button type="button" class="small" onClick={() => setEditing(false)}>
          Cancel
        </button>
        {error !== undefined && <ErrorBox error={error} />}
      </form>
    );
  }
  return (
    <>
      <span class="device-label">{device.label ?? device.name}</span>
      {device.label && <span class="muted small-print"> {device.name}</span>}{" "}
      <button type="button" class="small link" onClick={() => setEditing(true)} aria-label={`Rename ${device.label ?? device.name}`}>
        Rename
      </button>
    </>
  );
}

function Field({ label, value }: { label: string; value: string }) {
  return (
    <tr>
      <th scope="row">{label}</th>
      <td>
        <code class="setting">{value}</code> <CopyButton text={value} />
      </td>
    </tr>
  );
}

function Setup({ user, device, token }: { user: string; device: string; token: string }) {
  const origin = location.origin;
  const [app, setApp] = useState<"owntracks" | "overland" | "gpslogger" | "osmand">("owntracks");
  const canvas = useRef<HTMLCanvasElement>(null);
  const config = ownTracksConfig(origin, user, device, token);
  const configUrl = ownTracksConfigUrl(config);
  useEffect(() => {
    if (app === "owntracks" && canvas.current) QRCode.toCanvas(canvas.current, configUrl, { errorCorrectionLevel: "M", margin: 2, width: 260 }).catch(() => undefined);
  }, [app, configUrl]);
  const gpsloggerBody = '{"time":"%TIME","lat":%LAT,"lon":%LON,"altitude":%ALT,"accuracy":%ACC,"speed":%SPD,"course":%DIR,"battery":%BATT}';
  return (
    <article class="card setup" data-testid="device-setup" aria-labelledby="setup-title">
      <h2 id="setup-title">Set up {device}</h2>
      <p>
        The token, shown only this once: <code class="token" data-testid="device-token">{token}</code> <CopyButton text={token} />
      </p>
      <div role="tablist" aria-label="Tracker app" class="tabs">
        {(
          [
            ["owntracks", "OwnTracks"],
            ["overland", "Overland"],
            ["gpslogger", "GPSLogger"],
            ["osmand", "OsmAnd / Traccar"],
          ] as const
        ).map(([key, label]) => (
          <button type="button" role="tab" aria-selected={app === key} class={app === key ? "active small" : "small"} onClick={() => setApp(key)}>
            {label}
          </button>
        ))}
      </div>
      <div role="tabpanel">
        {app === "owntracks" && (
          <div class="setup-grid">
            <table class="data settings">
              <tbody>
                <Field label="Mode" value="HTTP" />
                <Field label="URL" value={`${origin}/api/owntracks`} />
                <Field label="Authentication" value="on" />
                <Field label="Username" value={user} />
                <Field label="Password" value={token} />
                <Field label="Device ID" value={device} />
              </tbody>
            </table>
            <figure class="qr">
              <canvas ref={canvas} data-testid="owntracks-qr" aria-label="QR code with the OwnTracks configuration" role="img" />
              <figcaption>
                Scan with the phone's camera, or open <a href={configUrl}>this link</a> on the phone, to import the whole configuration into OwnTracks.
              </figcaption>
            </figure>
          </div>
        )}
        {app === "overland" && (
          <table class="data settings">
            <tbody>
              <Field label="Receiver Endpoint" value={`${origin}/api/overland?token=${token}`} />
            </tbody>
          </table>
        )}
        {app === "gpslogger" && (
          <table class="data settings">
            <tbody>
              <Field label="URL" value={`${origin}/api/v1/points`} />
              <Field label="HTTP method" value="POST" />
              <Field label="HTTP headers" value="Content-Type: application/json" />
              <Field label="HTTP body" value={gpsloggerBody} />
              <Field label="Basic auth username" value={user} />
              <Field label="Basic auth password" value={token} />
            </tbody>
          </table>
        )}
        {app === "osmand" && (
          <table class="data settings">
            <tbody>
              <Field label="OsmAnd online tracking URL" value={`${origin}/api/osmand?id=${token}&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5}`} />
              <Field label="Traccar Client server URL" value={`${origin}/api/osmand`} />
              <Field label="Traccar Client device identifier" value={token} />
            </tbody>
          </table>
        )}
      </div>
    </article>
  );
}
