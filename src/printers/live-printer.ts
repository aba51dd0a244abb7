/**
 * One printer's live state as the API and the MQTT mirror show it, built from its driver's PrinterUpdates. It says
 * when the shown state changed, so the fleet pushes changes instead of comparing every printer every second;
 * `last_seen` alone is not a change (a Bambu Lab printer reports every second).
 */
import type { PrinterModel, PrinterType } from '../stats/events.js';
import type { Clock } from './clock.js';
import type { LiveStatus, PrinterSnapshot, PrinterUpdate } from './types.js';

interface Shown {
  model: PrinterModel;
  online: boolean;
  linkProblem: string | null;
  noticeProblem: string | null;
}

export class LivePrinter {
  private readonly shown: Shown;
  private status: LiveStatus = { state: null, progress: null, remaining_minutes: null };
  private lastSeen: number | null = null;

  constructor(
    readonly id: string,
    readonly name: string,
    readonly type: PrinterType,
    initialModel: PrinterModel,
    private readonly clock: Clock,
  ) {
    this.shown = { model: initialModel, online: false, linkProblem: null, noticeProblem: null };
  }

  get currentModel(): PrinterModel {
    return this.shown.model;
  }

  /** Applies an update; true when the shown state changed. */
  apply(update: PrinterUpdate): boolean {
    switch (update.kind) {
      case 'seen':
        this.lastSeen = this.clock.now();
        return false;
      case 'connected':
        this.lastSeen = this.clock.now();
        return this.set('online', true);
      case 'disconnected':
        return this.set('online', false);
      case 'observation': {
        this.lastSeen = this.clock.now();
        const status = update.status;
        if (!status) return false;
        const changed =
          status.state !== this.status.state ||
          status.progress !== this.status.progress ||
          status.remaining_minutes !== this.status.remaining_minutes;
        if (changed) this.status = { ...status };
        return changed;
      }
      case 'problem':
        return update.scope === 'link'
          ? this.set('linkProblem', update.problem)
          : this.set('noticeProblem', update.problem);
      case 'model':
        return this.set('model', update.model);
      default:
        return false;
    }
  }

  snapshot(): PrinterSnapshot {
    return {
      id: this.id,
      name: this.name,
      type: this.type,
      model: this.shown.model,
      online: this.shown.online,
      state: this.status.state,
      progress: this.status.progress,
      remaining_minutes: this.status.remaining_minutes,
      last_seen: this.lastSeen === null ? null : new Date(this.lastSeen).toISOString(),
      problem: this.shown.linkProblem ?? this.shown.noticeProblem,
    };
  }

  private set<K extends keyof Shown>(key: K, value: Shown[K]): boolean {
    if (this.shown[key] === value) return false;
    this.shown[key] = value;
    return true;
  }
}
