export { PowerOnInstance } from './power-on-instance.js';
