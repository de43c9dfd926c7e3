/* Boundaries in the admin (gridmap.widgets.OfflineOpenLayersWidget).
 *
 * A widget rendered with the `disabled` attribute (regions of an active or retired generation)
 * shows the boundary without the draw and modify tools of Django's MapWidget.
 */
/* global MapWidget */
(function () {
  "use strict";
  if (typeof MapWidget === "undefined") {
    return;
  }
  var createInteractions = MapWidget.prototype.createInteractions;
  MapWidget.prototype.createInteractions = function () {
    if (this.options.readonly) {
      return undefined;
    }
    return createInteractions.call(this);
  };
}());
