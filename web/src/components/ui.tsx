// Shared pieces of every page: loading and error states, data fetching with
// reload, titles and copy buttons.

import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError } from "../api";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" /> {label}
    </p>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const message = error instanceof ApiError ? error.message : error instanceof Error ? error.message : String(error);
  return (
    <div class="error" role="alert">
      <strong>Something went wrong.</strong> {message}
      {retry && (
        <button type="button" class="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Notice({ children, kind = "info" }: { children: ComponentChildren; kind?: "info" | "ok" | "warn" }) {
  return (
    <div class={`notice notice-${kind}`} role="status">
      {children}
    </div>
  );
}

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  set: (data: T) => void;
}

/** Runs `load` when `deps` change; stale answers of earlier runs are dropped. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  const set = useCallback((data: T) => setState({ data, loading: false }), []);
  return { data: state.data, error: state.error, loading: state.loading, reload, set };
}

export function PageTitle({ children, actions }: { children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    if (typeof children === "string") document.title = `${children} · polo`;
  }, [children]);
  return (
    <div class="page-title">
      <h1>{children}</h1>
      {actions && <div class="actions">{actions}</div>}
    </div>
  );
}

export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="small"
      onClick={() => {
        navigator.clipboard?.writeText(text).then(
          () => {
            setCopied(true);
            setTimeout(() => setCopied(false), 1500);
          },
          () => undefined,
        );
      }}
    >
      {copied ? "Copied" : label}
    </button>
  );
}

/** Rows per page of the long lists (places, trips): enough to scan, few enough to render at once. */
export const PAGE_SIZE = 50;

/**
 * The slice of `items` on page `page` (0-based, clamped), with the page
 * count. Long lists render one page: ten years hold thousands of places and
 * trips, and rendering them all froze the browser for seconds.
 */
export function pageOf<T>(items: T[], page: number, size = PAGE_SIZE): { rows: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const current = Math.min(Math.max(0, page), pages - 1);
  return { rows: items.slice(current * size, (current + 1) * size), page: current, pages };
}

/** "Showing 51–100 of 3,049" with previous and next buttons. */
export function Pager({ page, pages, total, size = PAGE_SIZE, onPage, label }: { page: number; pages: number; total: number; size?: number; onPage: (page: number) => void; label: string }) {
  if (total <= size) return null;
  const first = page * size + 1;
  const last = Math.min(total, (page + 1) * size);
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" class="small" onClick={() => onPage(page - 1)} disabled={page === 0}>
        ← Previous
      </button>
      <span class="muted">
        {first.toLocaleString("en")}–{last.toLocaleString("en")} of {total.toLocaleString("en")}
      </span>
      <button type="button" class="small" onClick={() => onPage(page + 1)} disabled={page >= pages - 1}>
        Next →
      </button>
    </nav>
  );
}
