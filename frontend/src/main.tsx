import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { EdgeClient } from './api/edge';
import { ClockSync } from './clock/clockSync';
import { App } from './App';
import './styles.css';

const api = new EdgeClient();
const clock = new ClockSync({ getTime: (options) => api.getTime(options) });

const root = document.getElementById('root');
if (!root) throw new Error('missing #root');
createRoot(root).render(
  <StrictMode>
    <App api={api} clock={clock} />
  </StrictMode>,
);
