export { LogNotifier } from '../notifications/log-notifier.js';
