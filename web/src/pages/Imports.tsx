// Imports: drop any supported file or zip; the upload shows its own
// progress, then the server's import job is polled until it is done and its
// summary (per file, rejected records with reasons, rejects download) is
// shown. Below, the history of past imports.

import { useEffect, useRef, useState } from "preact/hooks";
import { get, getCsrfToken, readResponse, type ImportJob } from "../api";
import { dateTime, formatBytes, formatCount } from "../format";
import { ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";
import { ImportDelete } from "../components/Deleting";

interface Upload {
  name: string;
  size: number;
  sent: number;
  job: ImportJob | null;
  error: unknown;
}

function upload(file: File, restoreDeleted: boolean, onProgress: (sent: number) => void): Promise<ImportJob> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/api/v1/imports${restoreDeleted ? "?restore_deleted=true" : ""}`);
    const token = getCsrfToken();
    if (token) request.setRequestHeader("X-CSRF-Token", token);
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.onprogress = (event) => onProgress(event.loaded);
    request.onerror = () => reject(new Error("The upload was interrupted."));
    request.onload = () => {
      const response = new Response(request.responseText, { status: request.status, headers: { "Content-Type": request.getResponseHeader("Content-Type") ?? "" } });
      readResponse<ImportJob>(response).then(resolve, reject);
    };
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

export function Imports() {
  const history = useAsync(() => get<{ imports: ImportJob[] }>("/api/v1/imports"), []);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dragging, setDragging] = useState(false);
  // Points deleted before are left out of a re-import unless this is ticked.
  const [restoreDeleted, setRestoreDeleted] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const update = (index: number, change: Partial<Upload>) => setUploads((list) => list.map((u, i) => (i === index ? { ...u, ...change } : u)));

  const start = (files: FileList | File[]) => {
    const list = [...files];
    if (list.length === 0) return;
    setUploads((previous) => {
      const base = previous.length;
      list.forEach((file, k) => {
        const index = base + k;
        upload(file, restoreDeleted, (sent) => update(index, { sent }))
          .then((job) => {
            update(index, { sent: file.size, job });
            poll(index, job);
          })
          .catch((error) => update(index, { error }));
      });
      return [...previous, ...list.map((file) => ({ name: file.name, size: file.size, sent: 0, job: null, error: undefined }))];
    });
  };

  const poll = (index: number, job: ImportJob) => {
    const step = () => {
      get<ImportJob>(job.url || `/api/v1/imports/${job.id}`)
        .then((next) => {
          update(index, { job: next });
          if (next.status === "queued" || next.status === "running") setTimeout(step, 400);
          else history.reload();
        })
        .catch((error) => update(index, { error }));
    };
    step();
  };

  return (
    <section>
      <PageTitle>Imports</PageTitle>
      <div
        class={`dropzone ${dragging ? "dragging" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          if (e.dataTransfer?.files) start(e.dataTransfer.files);
        }}
      >
        <p>
          <strong>Drop files here</strong> (Google Takeout zip, Records.json, Timeline.json, GPX, KML/KMZ, GeoJSON, CSV, OwnTracks .rec, FIT, or zips and gzips of them)
        </p>
        <label class="button primary">
          Choose files…
          <input
            ref={input}
            type="file"
            multiple
            class="visually-hidden"
            data-testid="import-file"
            onChange={(e) => {
              if (e.currentTarget.files) start(e.currentTarget.files);
              e.currentTarget.value = "";
            }}
          />
        </label>
        <label class="restore-deleted">
          <input type="checkbox" checked={restoreDeleted} onChange={(e) => setRestoreDeleted(e.currentTarget.checked)} data-testid="restore-deleted" /> Bring back points I
          deleted (otherwise a re-import leaves them out)
        </label>
      </div>
      {uploads.map((u) => (
        <UploadCard upload={u} />
      ))}
      <h2>History</h2>
      {history.loading && !history.data && <Loading label="Loading imports…" />}
      {history.error !== undefined && <ErrorBox error={history.error} retry={history.reload} />}
      {history.data && history.data.imports.length === 0 && <p class="muted">No imports since the server started (the history is kept in memory).</p>}
      {history.data && history.data.imports.length > 0 && (
        <table class="data stack">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Started</th>
              <th scope="col">Status</th>
              <th scope="col" class="num">
                Points added
              </th>
              <th scope="col" class="num">
                Duplicates
              </th>
              <th scope="col" class="num">
                Rejected
              </th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {history.data.imports.map((job) => (
              <tr>
                <td class="lead">{job.file_name}</td>
                <td data-label="Started">{dateTime(job.started)}</td>
                <td data-label="Status">
                  <span class={`status status-${job.status}`}>{job.status}</span>
                </td>
                <td class="num" data-label="Points added">
                  {formatCount(job.points_added)}
                </td>
                <td class="num" data-label="Duplicates">
                  {formatCount(job.duplicates)}
                </td>
                <td class="num" data-label="Rejected">
                  {job.rejected > 0 && job.rejects_file ? <a href={job.rejects_file} download>{formatCount(job.rejected)}</a> : formatCount(job.rejected)}
                </td>
                <td class="actions">{job.status === "done" && <ImportDelete job={job} onDeleted={() => undefined} />}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function UploadCard({ upload }: { upload: Upload }) {
  const job = upload.job;
  const uploading = !job && upload.error === undefined;
  const fraction = job ? (job.status === "done" || job.status === "failed" ? 1 : job.bytes_total > 0 ? job.bytes_read / job.bytes_total : 0) : upload.size > 0 ? upload.sent / upload.size : 0;
  const phase = uploading ? "Uploading" : job?.status === "queued" ? "Queued" : job?.status === "running" ? "Importing" : job?.status === "done" ? "Done" : job?.status === "failed" ? "Failed" : "Error";
  return (
    <article class="card upload" data-testid="upload" data-status={job?.status ?? (upload.error ? "error" : "uploading")} aria-live="polite">
      <h3>
        {upload.name} <span class="muted">({formatBytes(upload.size)})</span>
      </h3>
      <div class="progress-row">
        <progress max={1} value={fraction} aria-label={`${phase} ${upload.name}`} />
        <span>
          {phase} {Math.round(fraction * 100)} %
        </span>
      </div>
      {upload.error !== undefined && <ErrorBox error={upload.error} />}
      {job && (job.status === "running" || job.status === "queued") && (
        <p class="muted">
          {formatBytes(job.bytes_read)} of {formatBytes(job.bytes_total)} read · {formatCount(job.points_added)} points added so far
        </p>
      )}
      {job && (job.status === "done" || job.status === "failed") && <ImportSummary job={job} />}
    </article>
  );
}

function ImportSummary({ job }: { job: ImportJob }) {
  const [rejects, setRejects] = useState<{ reason: string; where: string; raw: string }[] | null>(null);
  useEffect(() => {
    if (job.rejected === 0 || !job.rejects_file) return;
    fetch(job.rejects_file, { credentials: "same-origin", headers: { "X-Requested-With": "XMLHttpRequest" } })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))))
      .then((text) => {
        const rows = text
          .split("\n")
          .filter(Boolean)
          .slice(0, 50)
          .map((line) => {
            try {
              const row = JSON.parse(line) as { reason?: string; source_file?: string; line?: number; byte_offset?: number; raw?: string };
              const where = `${row.source_file ?? ""}${row.line !== undefined ? `, line ${row.line}` : row.byte_offset !== undefined ? `, byte ${row.byte_offset}` : ""}`;
              return { reason: row.reason ?? "", where, raw: (row.raw ?? "").slice(0, 160) };
            } catch {
              return { reason: line, where: "", raw: "" };
            }
          });
        setRejects(rows);
      })
      .catch(() => setRejects([]));
  }, [job.id, job.rejected]);
  return (
    <div class="summary" data-testid="import-summary">
      {job.error && (
        <p class="error" role="alert">
          {job.error}
        </p>
      )}
      <dl class="stats-grid">
        <div>
          <dt>Points added</dt>
          <dd data-testid="points-added">{formatCount(job.points_added)}</dd>
        </div>
        <div>
          <dt>Duplicates</dt>
          <dd>{formatCount(job.duplicates)}</dd>
        </div>
        {(job.deleted_left_out ?? 0) > 0 && (
          <div>
            <dt>Left out: you deleted them</dt>
            <dd data-testid="deleted-left-out">{formatCount(job.deleted_left_out)}</dd>
          </div>
        )}
        <div>
          <dt>Visits and activities</dt>
          <dd>{formatCount(job.intervals_added)}</dd>
        </div>
        <div>
          <dt>Rejected</dt>
          <dd data-testid="rejected">{formatCount(job.rejected)}</dd>
        </div>
      </dl>
      {job.files.length > 0 && (
        <table class="data">
          <caption>Files</caption>
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Format</th>
              <th scope="col" class="num">
                Added
              </th>
              <th scope="col" class="num">
                Rejected
              </th>
              <th scope="col">Note</th>
            </tr>
          </thead>
          <tbody>
            {job.files.map((f) => (
              <tr>
                <td>{f.path}</td>
                <td>{f.format ?? "–"}</td>
                <td class="num">{formatCount(f.points_added)}</td>
                <td class="num">{formatCount(f.rejected)}</td>
                <td>{f.error ?? f.skipped ?? (f.notes ?? []).join("; ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {job.rejected > 0 && job.rejects_file && (
        <>
          <p>
            <a class="button small" href={job.rejects_file} download={`${job.file_name}.rejects.jsonl`}>
              Download the rejected records
            </a>
          </p>
          {rejects && rejects.length > 0 && (
            <table class="data rejects" data-testid="rejects">
              <caption>Rejected records{job.rejected > rejects.length ? ` (first ${rejects.length} of ${formatCount(job.rejected)})` : ""}</caption>
              <thead>
                <tr>
                  <th scope="col">Where</th>
                  <th scope="col">Reason</th>
                  <th scope="col">Record</th>
                </tr>
              </thead>
              <tbody>
                {rejects.map((r) => (
                  <tr>
                    <td>{r.where}</td>
                    <td>{r.reason}</td>
                    <td>
                      <code>{r.raw}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </div>
  );
}
