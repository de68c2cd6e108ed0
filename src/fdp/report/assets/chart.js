// fdp report: draws one symbol's chart from the page's JSON block with TradingView
// Lightweight Charts (lightweight-charts-5.2.1.js beside this file).
// Panes: split-adjusted candles with the moving-average overlays and the quality markers,
// volume, then one pane per lower indicator. Mouse wheel / drag zoom and pan; the legend shows
// the values under the crosshair. Data only ever reaches the page as text (textContent, canvas),
// never as markup.
(function () {
  "use strict";
  var LC = window.LightweightCharts;
  var host = document.getElementById("chart");
  var legend = document.getElementById("legend");
  var data = JSON.parse(document.getElementById("fdp-data").textContent);
  var UP = "#26a69a", DOWN = "#ef5350";
  var UP_VOLUME = "rgba(38, 166, 154, 0.45)", DOWN_VOLUME = "rgba(239, 83, 80, 0.45)";
  var time = data.time;

  var chart = LC.createChart(host, {
    autoSize: true,
    layout: {
      background: { type: "solid", color: "#ffffff" },
      textColor: "#24292f",
      fontSize: 12,
      panes: { separatorColor: "#d0d7de", enableResize: true },
    },
    grid: { vertLines: { color: "#f0f2f4" }, horzLines: { color: "#f0f2f4" } },
    crosshair: { mode: LC.CrosshairMode.Normal },
    rightPriceScale: { borderColor: "#d0d7de" },
    timeScale: { borderColor: "#d0d7de", rightOffset: 2, minBarSpacing: 0.5 },
  });

  function points(values) {
    // A null becomes whitespace: a gap in the line, not a drop to zero.
    return time.map(function (t, i) {
      return values[i] === null ? { time: t } : { time: t, value: values[i] };
    });
  }

  var isUp = time.map(function (_, i) { return data.close[i] >= data.open[i]; });
  var candles = chart.addSeries(LC.CandlestickSeries, {
    upColor: UP, downColor: DOWN, wickUpColor: UP, wickDownColor: DOWN, borderVisible: false,
    priceLineVisible: false,
  });
  candles.setData(time.map(function (t, i) {
    var o = data.open[i], h = data.high[i], l = data.low[i], c = data.close[i];
    return o === null || h === null || l === null || c === null
      ? { time: t }
      : { time: t, open: o, high: h, low: l, close: c };
  }));
  var overlays = data.overlays.map(function (line) {
    var series = chart.addSeries(LC.LineSeries, {
      color: line.color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false,
      crosshairMarkerVisible: false,
    });
    series.setData(points(line.values));
    return series;
  });
  if (data.markers.length) {
    LC.createSeriesMarkers(candles, data.markers.map(function (m) {
      return { time: m.time, position: "aboveBar", color: "#cf222e", shape: "arrowDown", text: m.text };
    }));
  }

  var volume = chart.addSeries(LC.HistogramSeries, {
    priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false,
  }, 1);
  volume.setData(time.map(function (t, i) {
    var v = data.volume[i];
    return v === null ? { time: t } : { time: t, value: v, color: isUp[i] ? UP_VOLUME : DOWN_VOLUME };
  }));
  data.panes.forEach(function (line, k) {
    var series = chart.addSeries(LC.LineSeries, {
      color: line.color, lineWidth: 1.5, priceLineVisible: false,
    }, k + 2);
    series.setData(points(line.values));
  });
  chart.panes().forEach(function (pane, k) { pane.setStretchFactor(k === 0 ? 3 : 1); });
  // Candles stay readable: the last VISIBLE bars at first, the rest a scroll or zoom away.
  var VISIBLE = 130;
  if (time.length > VISIBLE) {
    chart.timeScale().setVisibleLogicalRange({ from: time.length - VISIBLE, to: time.length + 1 });
  } else {
    chart.timeScale().fitContent();
  }

  // The legend: one span per series, filled with the values at the crosshair (the last bar
  // when the mouse is away).
  function span(text, color) {
    var s = document.createElement("span");
    s.textContent = text;
    if (color) { s.style.color = color; }
    legend.appendChild(s);
    return s;
  }
  var ohlcSpan = span("", "#24292f");
  var lineSpans = data.overlays.concat(data.panes).map(function (line) {
    return { line: line, el: span("", line.color) };
  });
  var volumeSpan = span("", "#57606a");
  function fmt(v, digits) {
    return v === null || v === undefined ? "–" : v.toLocaleString("en-US", {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
  }
  function show(i) {
    ohlcSpan.textContent = time[i] + "  O " + fmt(data.open[i], 2) + "  H " + fmt(data.high[i], 2) +
      "  L " + fmt(data.low[i], 2) + "  C " + fmt(data.close[i], 2);
    lineSpans.forEach(function (s) { s.el.textContent = s.line.label + " " + fmt(s.line.values[i], 2); });
    volumeSpan.textContent = "Vol " + fmt(data.volume[i], 0);
  }
  var index = {};
  time.forEach(function (t, i) { index[t] = i; });
  chart.subscribeCrosshairMove(function (param) {
    var key = param.time === undefined ? undefined : (typeof param.time === "string" ? param.time
      : param.time.year + "-" + String(param.time.month).padStart(2, "0") + "-" +
        String(param.time.day).padStart(2, "0"));
    show(key in index ? index[key] : time.length - 1);
  });
  if (time.length) { show(time.length - 1); }
  document.body.setAttribute("data-chart", "drawn");
})();
